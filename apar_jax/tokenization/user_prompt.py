"""One user request as every decoding path sends it to the model (`generate`, the engine, the
server's completions, the benchmarks, distillation): one rendering, so they all decode the same ids."""

from typing import Any, Sequence

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.chat_templates import Message, encode_chat


def encode_user_prompt(tokenizer: Tokenizer, prompt: str, tokenizer_config: Any,
                       raw: bool = False, earlier_turns: Sequence[Message] = ()) -> list[int]:
  """Token ids of `prompt` as one user turn in `tokenizer_config.chat_template` with its
  `system_prompt` (None = the template's default), after `earlier_turns` (chat messages, e.g. a
  demonstration exchange); `raw`: the bare text, no template.

  tokenizer_config: the config's `tokenizer` section (anything with those two fields)."""
  if raw:
    return tokenizer.encode(prompt)
  return encode_chat(tokenizer, [*earlier_turns, {'role': 'user', 'content': prompt}],
                     tokenizer_config.chat_template,
                     system_prompt=tokenizer_config.get('system_prompt', None))
