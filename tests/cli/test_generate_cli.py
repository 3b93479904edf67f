"""`python -m apar_jax generate` end to end on the tiny config: records, streaming, bad input."""

import json
import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELDS = ('prompt', 'mode', 'text', 'token_ids', 'num_generated_tokens', 'decode_steps',
          'wall_time_s', 'forks', 'max_live_branches', 'peak_kv_pages', 'mean_accepted_tokens')


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
  cmd = [sys.executable, '-m', 'apar_jax', *args]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def test_generate_writes_one_record_per_prompt(tmp_path):
  prompts = tmp_path / 'prompts.jsonl'
  prompts.write_text('{"prompt": "Hello there"}\n\n{"prompt": "Name a colour."}\n')
  out = tmp_path / 'out.jsonl'
  proc = run_cli('generate', '--config=configs/tiny.py', f'--prompts_file={prompts}',
                 '--max_new_tokens=6', f'--output={out}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  records = [json.loads(line) for line in out.read_text().splitlines()]
  assert [r['prompt'] for r in records] == ['Hello there', 'Name a colour.']
  for r in records:
    assert set(FIELDS) <= set(r)
    assert r['mode'] == 'ar'
    assert r['num_generated_tokens'] == len(r['token_ids']) <= 6
    assert r['decode_steps'] == r['num_generated_tokens']
  assert 'tokens/s' in proc.stderr


def test_txt_prompts_and_sampling_are_reproducible(tmp_path):
  prompts = tmp_path / 'p.txt'
  prompts.write_text('one\ntwo\n')
  outs = []
  for name in ('a', 'b'):
    out = tmp_path / f'{name}.jsonl'
    proc = run_cli('generate', '--config=configs/tiny.py', f'--prompts_file={prompts}',
                   '--max_new_tokens=5', '--temperature=1.0', '--top_k=40', '--seed=5',
                   f'--output={out}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs.append([json.loads(line)['token_ids'] for line in out.read_text().splitlines()])
  assert outs[0] == outs[1]


def test_no_repeat_ngram_reaches_the_engine(tmp_path):
  out = tmp_path / 'o.jsonl'
  proc = run_cli('generate', '--config=configs/tiny.py', '--prompt=one two', '--max_new_tokens=24',
                 '--no_repeat_ngram=2', '--repetition_penalty=1.2', '--nopenalize_symbols',
                 f'--output={out}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  ids = json.loads(out.read_text())['token_ids']
  pairs = list(zip(ids, ids[1:]))
  assert len(ids) > 4 and len(pairs) == len(set(pairs))  # no token bigram twice


@pytest.mark.parametrize('args,message', [
    (('--prompt=',), '--prompt is empty'),
    (('--prompts_file=/nonexistent/p.txt',), 'does not exist'),
    (('--prompt=hi', '--mode=nonsense'), 'unknown --mode'),
    (('--prompt=hi', '--max_new_tokens=-3'), 'max_new_tokens'),
    (('--prompt=hi', '--top_p=1.5'), 'top_p'),
    (('--prompt=hi', '--repetition_penalty=0'), '--repetition_penalty must be finite and > 0'),
    (('--prompt=hi', '--no_repeat_ngram=1'), '--no_repeat_ngram must be 0 (off)'),
    (('--prompt=hi', '--mode=lookup', '--no_repeat_ngram=3'), 'work in --mode=ar or apar'),
    (('--prompt=hi', '--config=configs/nope.py'), '--config=configs/nope.py: no such file'),
    (('--prompt=hi', '--config.engine.max_slotz=3'), 'did you mean max_slots'),
    (('--prompt=hi', '--config.enginex.max_slots=3'), "the config has no field 'enginex'"),
    (('--prompt=hi', '--config.engine.max_slots=abc'), '--config.engine.max_slots=abc'),
    (('--prompt=hi', '--output=/nonexistent_dir/out.jsonl'), 'does not exist'),
])
def test_bad_input_exits_with_a_clear_message(args, message):
  proc = run_cli('generate', '--config=configs/tiny.py', *args)
  assert proc.returncode == 2
  assert message in proc.stderr
  assert 'Traceback' not in proc.stderr


def test_existing_output_is_refused_before_decoding_unless_overwrite(tmp_path):
  out = tmp_path / 'out.jsonl'
  out.write_text('keep me\n')
  proc = run_cli('generate', '--config=configs/tiny.py', '--prompt=hi', '--max_new_tokens=3',
                 f'--output={out}')
  assert proc.returncode == 2 and '--overwrite' in proc.stderr and 'Traceback' not in proc.stderr
  assert 'tokens/s' not in proc.stderr  # refused before decoding
  assert out.read_text() == 'keep me\n'
  proc = run_cli('generate', '--config=configs/tiny.py', '--prompt=hi', '--max_new_tokens=3',
                 f'--output={out}', '--overwrite')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads(out.read_text().splitlines()[0])['prompt'] == 'hi'
