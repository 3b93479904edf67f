"""One user request as every decoding path sends it to the model (`generate`, the engine, the
server's completions, the benchmarks, distillation): one rendering, so they all decode the same ids."""

from typing import Any

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.chat_templates import encode_chat


def encode_user_prompt(tokenizer: Tokenizer, prompt: str, tokenizer_config: Any,
                       raw: bool = False) -> list[int]:
  """Token ids of `prompt` as one user turn in `tokenizer_config.chat_template` with its
  `system_prompt` (None = the template's default); `raw`: the bare text, no template.

  tokenizer_config: the config's `tokenizer` section (anything with those two fields)."""
  if raw:
    return tokenizer.encode(prompt)
  return encode_chat(tokenizer, [{'role': 'user', 'content': prompt}],
                     tokenizer_config.chat_template,
                     system_prompt=tokenizer_config.get('system_prompt', None))
