"""ShareGPT reading/validation and the deterministic prompt generator."""

import json

import pytest

from apar_jax.apar_data.prompt_generator import all_prompts, generate_prompts
from apar_jax.apar_data.sharegpt import exchanges, read_conversations, sharegpt_record


def test_json_and_jsonl_give_the_same_exchanges(tmp_path):
  records = [
      {'id': 'a', 'conversations': [{'from': 'system', 'value': 'Be brief.'},
                                    {'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello'},
                                    {'from': 'human', 'value': 'Bye'}, {'from': 'gpt', 'value': 'Ciao'}]},
      sharegpt_record('b', 'Q', 'cut off', finished=False),  # distiller hit its budget: skipped
      sharegpt_record('c', 'Q2', 'A2', kind='plain', finished=True),
  ]
  (tmp_path / 'd.json').write_text(json.dumps(records))
  (tmp_path / 'd.jsonl').write_text('\n'.join(json.dumps(r) for r in records) + '\n')
  got = [list(exchanges(read_conversations(str(tmp_path / name)))) for name in ('d.json', 'd.jsonl')]
  assert got[0] == got[1]
  items = got[0]
  assert [(e.conversation_id, e.turn, e.answer) for e in items] == [('a', 0, 'Hello'), ('a', 1, 'Ciao'),
                                                                    ('c', 0, 'A2')]
  assert [m['role'] for m in items[1].messages] == ['system', 'user', 'assistant', 'user']


def test_bad_files_are_explained(tmp_path):
  with pytest.raises(FileNotFoundError):
    read_conversations(str(tmp_path / 'missing.json'))
  bad = tmp_path / 'bad.jsonl'
  bad.write_text('{"id": 1, "conversations": [{"from": "bot", "value": "x"}]}\n')
  with pytest.raises(ValueError, match='not ShareGPT'):
    read_conversations(str(bad))
  bad.write_text('{not json\n')
  with pytest.raises(ValueError, match=':1: not valid JSON'):
    read_conversations(str(bad))


def test_prompt_generator_is_deterministic_varied_and_mixed():
  pools = all_prompts()
  assert sum(len(v) for v in pools.values()) >= 2000
  prompts = generate_prompts(2000, seed=0)
  assert prompts == generate_prompts(2000, seed=0)
  assert prompts != generate_prompts(2000, seed=1)
  assert len({p.text for p in prompts}) == len({p.id for p in prompts}) == 2000
  kinds = [p.kind for p in prompts]
  assert kinds.count('list') == 1200 and kinds.count('paragraphs') == 400
  first = [p.kind for p in prompts[:100]]  # any prefix has about the same mix
  assert 55 <= first.count('list') <= 65 and first.count('plain') >= 15
  assert all('{x}' not in p.text for p in prompts)
  with pytest.raises(ValueError, match='distinct prompts'):
    generate_prompts(10**6)


def test_unfinished_answers_are_dropped_or_trimmed():
  long_cut = 'First block of the answer. ' * 10 + '\n\n' + 'Second block. ' * 10 + '\n\nThird blo'
  records = [sharegpt_record('a', 'Q', long_cut, finished=False),
             sharegpt_record('b', 'Q', 'too short\n\ncut', finished=False)]
  assert list(exchanges(records)) == []
  trimmed = list(exchanges(records, unfinished='trim'))
  assert len(trimmed) == 1 and trimmed[0].answer == long_cut[:long_cut.rfind('\n\n')].rstrip()
  with pytest.raises(ValueError, match='unfinished'):
    list(exchanges(records, unfinished='keep'))
