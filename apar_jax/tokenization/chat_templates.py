"""Chat templates: ChatML (SmolLM2) and Vicuna v1.1 (the APAR authors' model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from apar_jax.tokenization.base import Tokenizer

SMOLLM2_SYSTEM_PROMPT = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face'
VICUNA_SYSTEM_PROMPT = ('A chat between a curious user and an artificial intelligence assistant. '
                        "The assistant gives helpful, detailed, and polite answers to the user's questions.")
TEMPLATES: tuple[str, ...] = ('chatml', 'vicuna_v1.1')

# Tokens a template writes that must be single ids of the tokenizer.
_TEMPLATE_TOKENS = {'chatml': ('<|im_start|>', '<|im_end|>'), 'vicuna_v1.1': ()}

Message = Mapping[str, str]


def _split_system(messages: Sequence[Message], default: str, system_prompt: str | None
                  ) -> tuple[str, Sequence[Message]]:
  """The system prompt (first message if it is 'system', else `system_prompt`, else `default`)
  and the remaining messages, checked."""
  if not messages:
    raise ValueError('A chat needs at least one message.')
  for m in messages:
    if not isinstance(m.get('content'), str) or m.get('role') not in ('system', 'user', 'assistant'):
      raise ValueError(f"Bad chat message {dict(m)!r}: expected {{'role': 'system' | 'user' | "
                       "'assistant', 'content': str}.")
  if any(m['role'] == 'system' for m in messages[1:]):
    raise ValueError("A 'system' message may only come first.")
  if messages and messages[0]['role'] == 'system':
    return messages[0]['content'], messages[1:]
  return (default if system_prompt is None else system_prompt), messages


def _chatml(messages: Sequence[Message], add_generation_prompt: bool, system_prompt: str | None) -> str:
  # SmolLM2's template writes its default system turn only when the first message is not 'system'.
  system, rest = _split_system(messages, SMOLLM2_SYSTEM_PROMPT, system_prompt)
  turns = [('system', system), *((m['role'], m['content']) for m in rest)]
  text = ''.join(f'<|im_start|>{role}\n{content}<|im_end|>\n' for role, content in turns)
  return text + ('<|im_start|>assistant\n' if add_generation_prompt else '')


def _vicuna(messages: Sequence[Message], add_generation_prompt: bool, system_prompt: str | None,
            eos_token: str) -> str:
  # FastChat's vicuna_v1.1: "{system} USER: {u} ASSISTANT: {a}</s>USER: ... ASSISTANT:"
  system, rest = _split_system(messages, VICUNA_SYSTEM_PROMPT, system_prompt)
  text = system + ' '
  for m in rest:
    if m['role'] == 'user':
      text += f"USER: {m['content']} "
    else:
      text += f"ASSISTANT: {m['content']}{eos_token}"
  return text + ('ASSISTANT:' if add_generation_prompt else '')


def apply_chat_template(messages: Sequence[Message], template: str, add_generation_prompt: bool = True,
                        system_prompt: str | None = None, *, eos_token: str = '</s>') -> str:
  """The prompt text for `messages` (dicts with 'role' and 'content').

  template: 'chatml' (SmolLM2's: default system prompt when the first message is not 'system') or
    'vicuna_v1.1' (FastChat's: `USER: ... ASSISTANT:`).
  system_prompt: replaces the template's default system prompt (a leading 'system' message wins).
  eos_token: what Vicuna writes after each assistant turn (the tokenizer's EOS text).
  """
  if template == 'chatml':
    return _chatml(messages, add_generation_prompt, system_prompt)
  if template == 'vicuna_v1.1':
    return _vicuna(messages, add_generation_prompt, system_prompt, eos_token)
  raise ValueError(f"Unknown chat template {template!r}; expected one of {', '.join(TEMPLATES)}.")


def encode_chat(tokenizer: Tokenizer, messages: Sequence[Message], template: str, *,
                add_generation_prompt: bool = True, system_prompt: str | None = None,
                add_bos: bool | None = None) -> list[int]:
  """Token ids of the chat prompt. `add_bos=None` follows the tokenizer's own default (no BOS for
  SmolLM2, BOS for LLaMA/Vicuna sentencepiece models)."""
  for token in _TEMPLATE_TOKENS.get(template, ()):
    if tokenizer.token_to_id(token) is None:
      raise ValueError(f'Template {template!r} needs {token!r} as one token, and this tokenizer '
                       'has no such token. Pick the template the model was trained with.')
  text = apply_chat_template(messages, template, add_generation_prompt, system_prompt,
                             eos_token=tokenizer.id_to_token(tokenizer.eos_id))
  return tokenizer.encode(text, add_bos=tokenizer.add_bos_default if add_bos is None else add_bos)
