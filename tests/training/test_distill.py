"""`distill` on a tiny random model: ShareGPT JSONL out, resumable, both decoding backends."""

import json
import os

import pytest

from apar_jax.apar_data.distill_filter import Verdict
from apar_jax.apar_data.sharegpt import exchanges, read_conversations
from apar_jax.commands import distill
from apar_jax.defaults import distill_defaults


def _config(load_config, out, backend):
  config = load_config('tiny')
  config.distill = distill_defaults()
  config.distill.update(num_prompts=5, output=out, batch_size=2, max_new_tokens=6, backend=backend)
  return config


def _lines(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]


@pytest.mark.parametrize('backend', ['dense', 'engine'])
def test_distill_writes_every_attempt_and_resumes_without_loss_or_duplicates(tmp_path, load_config,
                                                                             backend):
  out = str(tmp_path / 'out.jsonl')
  config = _config(load_config, out, backend)
  config.distill.max_attempts = 2
  penalties = (1.2, 3) if backend == 'engine' else (1.0, 0)  # the dense backend has none
  spare = backend == 'engine'  # the penalty spares tokens without a letter
  config.distill.update(repetition_penalty=penalties[0], no_repeat_ngram=penalties[1],
                        penalize_symbols=not spare)
  distill.run(config)  # a random tiny model never finishes: every answer dropped, two attempts each
  records = _lines(out)
  assert len(records) == 10
  assert sorted((r['id'], r['attempt']) for r in records) == sorted(
      (i, a) for i in {r['id'] for r in records} for a in (0, 1))
  assert all(r['conversations'][0]['from'] == 'human' and r['conversations'][1]['from'] == 'gpt'
             for r in records)
  assert all(0 < r['num_tokens'] <= 6 and r['finished'] is False for r in records)
  assert all(r['kept'] is False and r['drop_reason'] == 'budget' and r['split'] == 'train'
             for r in records)
  assert len({(r['id'], r['seed']) for r in records}) == 10  # each attempt its own seed
  assert len(read_conversations(out)) == 10
  report = json.loads(open(distill.report_path(out), encoding='utf-8').read())
  assert report['answers'] == 10 and report['requests_kept'] == 0
  assert report['dropped'] == {'budget': 10}
  assert all((r['repetition_penalty'], r['no_repeat_ngram'], r['penalize_symbols'])
             == (*penalties, not spare) for r in records)
  dc = config.distill
  assert all((r['temperature'], r['top_p'], r['top_k']) == (dc.temperature, dc.top_p, dc.top_k)
             for r in records)
  label = f'repetition_penalty={penalties[0]:g} no_repeat_ngram={penalties[1]}'
  assert report['by_sampling'] == {label + (' symbols_spared' if spare else ''): {'dropped': 10}}

  # Simulate a crash: seven records lost and a half-written line; the re-run answers just those.
  with open(out, 'w', encoding='utf-8') as f:
    f.writelines(json.dumps(r) + '\n' for r in records[:3])
    f.write('{"id": "partial')
  distill.run(config)
  again = _lines(out)
  assert again[:3] == records[:3]
  key = lambda r: (r['id'], r['attempt'])  # noqa: E731
  assert sorted(map(key, again)) == sorted(map(key, records))  # nothing lost, nothing twice
  if backend == 'dense':  # greedy: the same answers again
    assert sorted(again, key=key) == sorted(records, key=key)
  mtime = os.path.getmtime(out)
  distill.run(config)  # nothing left to do
  assert os.path.getmtime(out) == mtime


def test_distill_stops_drawing_once_an_answer_is_kept(tmp_path, load_config, monkeypatch):
  out = str(tmp_path / 'out.jsonl')
  config = _config(load_config, out, 'engine')
  config.distill.max_attempts = 3
  # The first five answers are dropped, the rest kept (the filters are tested on their own).
  calls = []

  def judge(text, finished, kind):
    calls.append(kind)
    return Verdict(len(calls) > 5, '' if len(calls) > 5 else 'budget', '')
  monkeypatch.setattr(distill, 'judge', judge)
  distill.run(config)
  records = _lines(out)
  by_id = {}
  for r in records:
    by_id.setdefault(r['id'], []).append(r)
  assert len(by_id) == 5 and len(records) == 10
  for rs in by_id.values():  # attempts in order, drawn until the first kept one
    assert [r['attempt'] for r in rs] == list(range(len(rs)))
    assert rs[-1]['kept'] and not any(r['kept'] for r in rs[:-1])
  assert len(read_conversations(out)) == 10
  as_finished = [{**r, 'finished': True} for r in records]
  assert len(list(exchanges(as_finished))) == 5  # the trainer reads the kept ones only
  distill.run(config)  # every request settled
  assert len(_lines(out)) == 10


def test_bad_backend(tmp_path, load_config):
  with pytest.raises(ValueError, match='backend'):
    distill.run(_config(load_config, str(tmp_path / 'o.jsonl'), 'vllm'))


def test_dense_backend_refuses_repetition_settings(tmp_path, load_config):
  config = _config(load_config, str(tmp_path / 'o.jsonl'), 'dense')
  config.distill.no_repeat_ngram = 4
  with pytest.raises(ValueError, match='need the engine backend'):
    distill.run(config)


def test_train_command_distills_first(tmp_path, load_config, monkeypatch):
  from apar_jax.apar_data import dataset, sharegpt
  from apar_jax.commands import train as train_command
  from apar_jax.defaults import train_defaults
  config = _config(load_config, str(tmp_path / 'distilled.jsonl'), 'dense')
  config.distill.update(num_prompts=4, max_new_tokens=4, max_attempts=1)
  config.train = train_defaults()
  config.train.update(data_path=config.distill.get_ref('output'), distill_first=True,
                      plain_fraction=1.0, seq_len=96, max_branches=4, batch_size=2, total_steps=1,
                      warmup_steps=0, save_every=1, checkpoint_dir=str(tmp_path / 'ckpt'),
                      log_dir=str(tmp_path / 'logs'), export_dir=str(tmp_path / 'adapter'),
                      plot_path=str(tmp_path / 'loss.png'))
  config.train.lora.rank = 2
  # A random tiny model never ends its answers: train on the cut ones anyway in this test.
  monkeypatch.setattr(dataset, 'exchanges', lambda records, unfinished: sharegpt.exchanges(
      [{k: v for k, v in r.items() if k not in ('finished', 'kept')} for r in records],
      unfinished))
  train_command.run(config)
  assert len(_lines(config.distill.output)) == 4
  assert os.path.isdir(str(tmp_path / 'adapter')) and os.path.exists(str(tmp_path / 'loss.png'))


def test_rejudge_applies_todays_filters_to_finished_answers_only(tmp_path):
  good = ('Try these:\n\n1. **Water**: Water it once a week.\n2. **Light**: Put it near a bright '
          'window.\n3. **Soil**: Use a light potting mix.')
  def record(rid, attempt, text, finished, kept, reason):
    return dict(id=rid, conversations=[dict(**{'from': 'human', 'value': 'q'}),
                                       dict(**{'from': 'gpt', 'value': text})],
                kind='list', finished=finished, attempt=attempt, kept=kept, drop_reason=reason,
                tree_kind='')
  records = [record('a', 0, good, True, False, '4gram_loop'),  # an older, stricter filter
             record('a', 1, good, True, True, ''),  # a second kept answer to the same request
             record('b', 0, good, False, False, '4gram_loop'),  # cut mid-decode: left alone
             record('c', 0, 'Water it.', True, True, '')]  # kept by an older, looser filter
  path = tmp_path / 'out.jsonl'
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))
  assert distill.rejudge(str(path)) == 3
  got = _lines(str(path))
  assert [(r['kept'], r['drop_reason'], r['tree_kind']) for r in got] == [
      (True, '', 'list'), (False, distill.SUPERSEDED, ''), (False, '4gram_loop', ''),
      (False, 'no_structure', '')]
  assert [r['conversations'] for r in got] == [r['conversations'] for r in records]
  assert distill.rejudge(str(path)) == 0


def test_a_second_distillation_into_the_same_file_is_refused(tmp_path):
  out = str(tmp_path / 'out.jsonl')
  with distill.exclusive(out, True):
    with pytest.raises(RuntimeError, match=r'another distillation is writing .*pid \d+'):
      with distill.exclusive(out, True):
        pass
  with distill.exclusive(out, True):  # released: the next run may go
    pass


def test_kind_shares_and_list_demo_reach_the_requests_and_the_records(tmp_path, load_config,
                                                                      monkeypatch):
  from apar_jax.apar_data.format_demos import demo_turns
  from apar_jax.commands import base_answers
  from apar_jax.tokenization import encode_chat, encode_user_prompt
  out = str(tmp_path / 'out.jsonl')
  config = _config(load_config, out, 'dense')
  config.distill.update(num_prompts=6, max_attempts=1, kind_shares='list=0.5,plain=0.5',
                        list_demo='bold_titles')
  seen = {}
  encode = base_answers.encode_request

  def spy(tok, cfg, prompt, list_demo=''):
    ids = encode(tok, cfg, prompt, list_demo)
    seen[prompt.kind, prompt.text] = (tok, ids)
    return ids
  monkeypatch.setattr(base_answers, 'encode_request', spy)
  distill.run(config)
  records = _lines(out)
  assert sorted(r['kind'] for r in records) == ['list'] * 3 + ['plain'] * 3
  assert all(r['list_demo'] == ('bold_titles' if r['kind'] == 'list' else '') for r in records)
  for (kind, text), (tok, ids) in seen.items():  # the teacher sees the demonstration ...
    request = {'role': 'user', 'content': text}
    expected = (encode_chat(tok, [*demo_turns('bold_titles'), request],
                            config.tokenizer.chat_template,
                            system_prompt=config.tokenizer.get('system_prompt', None))
                if kind == 'list' else encode_user_prompt(tok, text, config.tokenizer))
    assert ids == expected
  # ... and the record holds the request alone.
  assert {r['conversations'][0]['value'] for r in records} == {t for _, t in seen}
  report = json.loads(open(distill.report_path(out), encoding='utf-8').read())
  assert sum(v['dropped'] for k, v in report['by_sampling'].items()
             if k.endswith(' list_demo=bold_titles')) == 3


@pytest.mark.parametrize('field, value, message', [
    ('kind_shares', 'list=0.5,lists=0.5', 'kind=share'),
    ('kind_shares', 'list=0', 'shares > 0'),
    ('kind_shares', 'list', 'kind=share'),
    ('list_demo', 'bold', "unknown format demonstration 'bold': choose one of \\['bold_titles', "),
])
def test_bad_kind_shares_or_list_demo_stop_before_decoding(tmp_path, load_config, field, value,
                                                           message):
  config = _config(load_config, str(tmp_path / 'o.jsonl'), 'dense')
  config.distill[field] = value
  with pytest.raises(ValueError, match=message):
    distill.run(config)
  assert not os.path.exists(str(tmp_path / 'o.jsonl'))
