"""`python -m apar_jax.bench.apar_eval` end to end on a tiny random model and adapter."""

import json
import os
import subprocess
import sys

import jax

from apar_jax.runtime import load_tokenizer_from_config
from apar_jax.training import LoraSpec, init_adapter, save_adapter
from apar_jax.weights import load_params

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(args, tmp_path):
  return subprocess.run([sys.executable, '-m', 'apar_jax.bench.apar_eval',
                         f'--config={REPO}/configs/tiny.py', *args],
                        cwd=str(tmp_path), capture_output=True, text=True, timeout=900)


def test_eval_reports_both_models_side_by_side_and_caches_both_models_answers(tiny_config, tmp_path):
  tok = load_tokenizer_from_config(tiny_config)
  spec = LoraSpec(rank=2, alpha=4.0, targets=('q_proj',), token_ids=(tok.fork_id, tok.child_id))
  adapter_dir = str(tmp_path / 'adapter')
  save_adapter(adapter_dir, init_adapter(load_params(tiny_config, progress=False), spec,
                                         jax.random.key(0)))
  prompts = tmp_path / 'requests.jsonl'
  prompts.write_text(''.join(json.dumps(r) + '\n' for r in (
      dict(prompt='Give me 3 tips for sleep.'), dict(prompt='List ways to save water.'),
      dict(prompt='What is a kayak?', kind='plain'))))
  out = tmp_path / 'eval'
  args = [f'--config.weights.adapter={adapter_dir}', f'--prompts_file={prompts}',
          '--max_new_tokens=6', f'--out_dir={out}', '--slots=4', '--concurrent=2',
          '--base_batch=2']
  done = _run(args, tmp_path)
  assert done.returncode == 0, done.stderr[-3000:]
  assert '| measure | APAR model, APAR mode | base model, AR |' in done.stdout
  assert "base model's NLL of the answers" in done.stdout
  assert '... of the answers without a loop or budget cut (answers)' in done.stdout
  result = json.loads((out / 'apar_eval.json').read_text())
  assert result['summary']['apar']['list_requests'] == 2
  assert result['summary']['apar']['plain_requests'] == 1
  assert 0 <= result['summary']['apar']['clean_answers'] <= 2  # a tiny random model: loops or not
  assert [a['request']['kind'] for a in result['answers']] == ['list', 'list', 'plain']
  assert all(a['apar_nll'] > 0 and a['base_nll'] > 0 for a in result['answers'][:2])
  assert (out / 'apar_eval.png').stat().st_size > 0
  cache = (out / 'base_ar_answers.jsonl').read_text().splitlines()
  assert len(cache) == 3
  apar_cache = (out / 'apar_answers.jsonl').read_text().splitlines()
  assert len(apar_cache) == 3
  again = _run(args, tmp_path)  # both models' answers come from the caches
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'answers to decode' not in again.stderr
  assert (out / 'base_ar_answers.jsonl').read_text().splitlines() == cache
  assert (out / 'apar_answers.jsonl').read_text().splitlines() == apar_cache
  assert json.loads((out / 'apar_eval.json').read_text())['answers'] == result['answers']


def test_eval_refuses_a_config_without_an_adapter(tmp_path):
  done = _run([f'--out_dir={tmp_path}'], tmp_path)
  assert done.returncode != 0 and 'has no weights.adapter' in done.stderr
