"""The demo's pieces on the tiny config: every mode streams exactly its final text, the speculative
rows are token-identical to their references, and the table reports each mode's own figures."""

from apar_jax.commands import demo
from apar_jax.model import build_model
from apar_jax.runtime import Runtime, load_model_params, load_tokenizer_from_config
from apar_jax.defaults import presets
from apar_jax.tokenization import encode_chat


def test_every_mode_streams_its_text_and_the_table_reports_it():
  config = presets.tiny()
  runtime = Runtime(config, build_model(config.model), load_model_params(config),
                    load_tokenizer_from_config(config), None)
  ids = encode_chat(runtime.tokenizer, [{'role': 'user', 'content': demo.QUESTION}],
                    config.tokenizer.chat_template, system_prompt=config.tokenizer.system_prompt)
  answers = []
  for mode in ('ar', 'apar', 'lookup', 'apar_lookup'):
    pieces = []
    answers.append(demo.answer(runtime, mode, ids, pieces.append))
    result = answers[-1].result
    assert ''.join(pieces) == result.text and result.num_generated_tokens > 0
    assert answers[-1].compile_s > 0
  rows = demo.table(answers).splitlines()[2:]
  assert [r.split('|')[1].strip() for r in rows] == ['ar', 'apar', 'lookup', 'apar_lookup']
  assert '| ar: yes |' in rows[2] and '| apar: yes |' in rows[3]
  assert rows[0].endswith('| - |')  # no drafter, no tree
  assert answers[2].trees.startswith('1 row: ') and rows[2].endswith(f'| {answers[2].trees} |')
  ar = answers[0].result
  assert f'| {ar.num_generated_tokens} | {ar.decode_steps} | 1.00 |' in rows[0]
  assert '| 1.00x |' in rows[0]
