"""SmolLM2 from the GGUF: our greedy 32 tokens equal transformers' greedy `generate` on the same file."""

import os

import numpy as np
import pytest

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

from apar_jax.generate import DenseGenerator  # noqa: E402
from apar_jax.runtime import load_runtime  # noqa: E402
from apar_jax.tokenization import encode_chat  # noqa: E402

PROMPTS = [
    'What is the capital of France?',
    'List three benefits of regular exercise.',
    'Write a haiku about the sea.',
]
NEW_TOKENS = 32


@pytest.fixture(scope='module')
def runtime(request):
  load_config = request.getfixturevalue('load_config')
  return load_runtime(load_config('smollm2_135m'))


@pytest.fixture(scope='module')
def hf_model(runtime):
  from apar_jax.weights import default_gguf_path
  path = default_gguf_path()
  model = transformers.AutoModelForCausalLM.from_pretrained(
      os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
  return model.eval()


def test_greedy_tokens_identical_to_transformers(runtime, hf_model):
  tok = runtime.tokenizer
  gen = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                       banned_ids=(tok.fork_id, tok.child_id))
  for prompt in PROMPTS:
    ids = encode_chat(tok, [{'role': 'user', 'content': prompt}], 'chatml')
    ours = gen.generate([ids], NEW_TOKENS)['tokens'][0]
    with torch.no_grad():
      theirs = hf_model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                                 eos_token_id=list(tok.stop_ids), pad_token_id=tok.pad_id)
    theirs = theirs[0, len(ids):].tolist()
    assert ours == theirs, (prompt, tok.decode(ours), tok.decode(theirs))
    assert len(ours) >= 8
