"""Chat templates: exact ChatML and Vicuna v1.1 text, ChatML against transformers on the SmolLM2 GGUF."""

from __future__ import annotations

import pytest

from apar_jax.tokenization import (
    SMOLLM2_SYSTEM_PROMPT,
    VICUNA_SYSTEM_PROMPT,
    apply_chat_template,
    encode_chat,
)

USER = [{'role': 'user', 'content': 'Give me three tips.'}]
CONVERSATIONS = [
    USER,
    [{'role': 'system', 'content': 'Be brief.'}, *USER],
    [*USER, {'role': 'assistant', 'content': '1. Sleep: rest well.\n\n2. Eat: well.'},
     {'role': 'user', 'content': 'More?'}],
    [{'role': 'user', 'content': 'Ünïcödé 😀 and\nnewlines  \n'}],
]


def test_chatml_single_turn():
  assert apply_chat_template(USER, 'chatml') == (
      f'<|im_start|>system\n{SMOLLM2_SYSTEM_PROMPT}<|im_end|>\n'
      '<|im_start|>user\nGive me three tips.<|im_end|>\n<|im_start|>assistant\n')


def test_chatml_system_prompt_choices():
  own = apply_chat_template([{'role': 'system', 'content': 'S'}, *USER], 'chatml', system_prompt='X')
  assert own.startswith('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n')
  assert apply_chat_template(USER, 'chatml', system_prompt='X').startswith('<|im_start|>system\nX<|im_end|>')
  assert not apply_chat_template(USER, 'chatml', add_generation_prompt=False).endswith('assistant\n')


def test_vicuna_single_and_multi_turn():
  assert apply_chat_template(USER, 'vicuna_v1.1') == (
      f'{VICUNA_SYSTEM_PROMPT} USER: Give me three tips. ASSISTANT:')
  turns = [*USER, {'role': 'assistant', 'content': 'Tips.'}, {'role': 'user', 'content': 'More?'}]
  assert apply_chat_template(turns, 'vicuna_v1.1', system_prompt='Sys') == (
      'Sys USER: Give me three tips. ASSISTANT: Tips.</s>USER: More? ASSISTANT:')
  assert apply_chat_template(turns[:2], 'vicuna_v1.1', add_generation_prompt=False, eos_token='<e>') == (
      f'{VICUNA_SYSTEM_PROMPT} USER: Give me three tips. ASSISTANT: Tips.<e>')


@pytest.mark.parametrize('messages, message', [
    ([], 'at least one message'),
    ([{'role': 'robot', 'content': 'x'}], 'Bad chat message'),
    ([{'role': 'user'}], 'Bad chat message'),
    ([*USER, {'role': 'system', 'content': 'late'}], 'only come first'),
])
def test_bad_messages(messages, message):
  with pytest.raises(ValueError, match=message):
    apply_chat_template(messages, 'chatml')


def test_unknown_template():
  with pytest.raises(ValueError, match="Unknown chat template 'llama3'.*chatml, vicuna_v1.1"):
    apply_chat_template(USER, 'llama3')


@pytest.mark.smollm2
@pytest.mark.parametrize('messages', CONVERSATIONS)
@pytest.mark.parametrize('add_generation_prompt', [True, False])
def test_chatml_matches_transformers_on_the_gguf_template(hf_smollm2, hf_with_smollm2_split, smollm2,
                                                          messages, add_generation_prompt):
  theirs = hf_smollm2.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                          tokenize=False)
  assert apply_chat_template(messages, 'chatml', add_generation_prompt) == theirs
  ids = encode_chat(smollm2, messages, 'chatml', add_generation_prompt=add_generation_prompt)
  # "\n\n2." in a turn splits differently in transformers' GGUF tokenizer (see the GGUF tests).
  assert ids == hf_with_smollm2_split.encode(theirs, add_special_tokens=False).ids
  assert ids[0] == smollm2.bos_id == smollm2.token_to_id('<|im_start|>')  # the template's, not an added BOS


def test_vicuna_with_a_sentencepiece_model(sp_tokenizer):
  turns = [*USER, {'role': 'assistant', 'content': 'Tips.'}, {'role': 'user', 'content': 'More?'}]
  ids = encode_chat(sp_tokenizer, turns, 'vicuna_v1.1')
  assert ids[0] == sp_tokenizer.bos_id and ids.count(sp_tokenizer.bos_id) == 1
  assert ids.count(sp_tokenizer.eos_id) == 1  # "</s>" after the assistant turn is the EOS id
  assert sp_tokenizer.decode(ids).startswith(VICUNA_SYSTEM_PROMPT + ' USER: Give me three tips.')
  assert encode_chat(sp_tokenizer, USER, 'vicuna_v1.1', add_bos=False)[0] != sp_tokenizer.bos_id


def test_chatml_needs_its_tokens(sp_tokenizer):
  with pytest.raises(ValueError, match="needs '<\\|im_start\\|>' as one token"):
    encode_chat(sp_tokenizer, USER, 'chatml')
