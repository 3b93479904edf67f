"""ShareGPT reading/validation and the deterministic prompt generator."""

import json
import os

import pytest

from apar_jax.apar_data.prompt_generator import (DATA_DIR, SPLITS, all_prompts, generate_prompts,
                                                 is_held_out, prompt_pools, split_of)
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


def test_jsonl_lines_end_at_newline_only(tmp_path):
  """Answers may hold separators str.splitlines() cuts at (the distiller writes them raw)."""
  answers = ['one\u2028two', 'three\x85four', 'five\x1csix\rseven']
  path = tmp_path / 'd.jsonl'
  with open(path, 'w', encoding='utf-8') as f:
    for k, a in enumerate(answers):
      f.write(json.dumps(sharegpt_record(str(k), 'Q', a, kind='plain', finished=True),
                         ensure_ascii=False) + '\n')
  assert [e.answer for e in exchanges(read_conversations(str(path)))] == answers


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
  assert sum(len(v) for v in pools.values()) >= 9000  # the train split alone
  prompts = generate_prompts(4000, seed=0)
  assert prompts == generate_prompts(4000, seed=0)
  assert prompts != generate_prompts(4000, seed=1)
  assert generate_prompts(5000, seed=0)[:4000] == prompts  # a longer run extends a shorter one
  assert len({p.text for p in prompts}) == len({p.id for p in prompts}) == 4000
  kinds = [p.kind for p in prompts]
  assert kinds.count('list') == 2400 and kinds.count('paragraphs') == 800
  first = [p.kind for p in prompts[:100]]  # any prefix has about the same mix
  assert 55 <= first.count('list') <= 65 and first.count('plain') >= 15
  assert all('{x}' not in p.text and '{n}' not in p.text for p in prompts)
  assert all(p.split == 'train' for p in prompts)
  texts = [p.text for p in prompts]  # phrasings: questions, imperatives, counts, context
  assert sum(t.endswith('?') for t in texts) > 1000 and sum(not t.endswith('?') for t in texts) > 1000
  assert sum(any(c.isdigit() for c in t) for t in texts) > 200
  assert sum(t.startswith(("I'm", 'I ', 'My ', 'We ')) for t in texts) > 200
  with pytest.raises(ValueError, match='distinct prompts'):
    generate_prompts(10**6)
  with pytest.raises(ValueError, match='split'):
    generate_prompts(5, split='test')


def test_heldout_split_shares_no_topic_and_no_template_with_training():
  templates = json.load(open(os.path.join(DATA_DIR, 'templates.json'), encoding='utf-8'))
  topics = json.load(open(os.path.join(DATA_DIR, 'topics.json'), encoding='utf-8'))
  pools = prompt_pools()
  by_split = {s: [p for pool in pools.values() for p in pool if p.split == s] for s in SPLITS}
  assert len([p for p in by_split['heldout'] if p.kind == 'list']) >= 100
  assert len([p for p in by_split['heldout'] if p.kind == 'plain']) >= 40
  assert not {p.id for p in by_split['heldout']} & {p.id for p in by_split['train']}
  held_topics = {t for ts in topics.values() for t in ts if is_held_out(t)}
  held_forms = {f for cats in templates.values() for fs in cats.values() for f in fs if is_held_out(f)}
  assert held_topics and held_forms
  for kind, cats in templates.items():  # every request of a held-out pair is held out, and only those
    for category, forms in cats.items():
      for form in forms[:3]:
        for topic in topics[category][:12]:
          assert split_of(form, topic) == ('heldout' if form in held_forms and topic in held_topics
                                           else 'train' if not (form in held_forms or topic in
                                                                 held_topics) else 'mixed')
  held = generate_prompts(40, seed=0, split='heldout')
  assert all(p.split == 'heldout' for p in held)
  assert not {p.id for p in held} & {p.id for p in generate_prompts(4000, seed=0)}


def test_unfinished_answers_are_dropped_or_trimmed():
  long_cut = 'First block of the answer. ' * 10 + '\n\n' + 'Second block. ' * 10 + '\n\nThird blo'
  records = [sharegpt_record('a', 'Q', long_cut, finished=False),
             sharegpt_record('b', 'Q', 'too short\n\ncut', finished=False)]
  assert list(exchanges(records)) == []
  trimmed = list(exchanges(records, unfinished='trim'))
  assert len(trimmed) == 1 and trimmed[0].answer == long_cut[:long_cut.rfind('\n\n')].rstrip()
  with pytest.raises(ValueError, match='unfinished'):
    list(exchanges(records, unfinished='keep'))
