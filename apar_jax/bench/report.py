"""The report as files: `bench_report.json` (everything) and `bench_report.md` (the tables)."""

import json
import os
from typing import Any, Optional

_MAIN_COLUMNS = ('mode', 'status', 'tokens', 'steps', 'steps/token', 'accepted/step',
                 'tokens/s median (min-max)', 'speed-up vs AR', 'TTFT ms', 'step ms (x roofline)',
                 'peak KV pages', 'attended KV/step', 'forks', 'same tokens as AR', 'compile s')


def _num(x: Optional[float], digits: int = 2) -> str:
  return '-' if x is None else f'{x:.{digits}f}'


def _spread(s: Optional[dict[str, float]], digits: int = 2) -> str:
  if not s:
    return '-'
  if s['n'] == 1:
    return _num(s['median'], digits)
  return f'{s["median"]:.{digits}f} ({s["min"]:.{digits}f}-{s["max"]:.{digits}f})'


def _row(cells: list[str]) -> str:
  return '| ' + ' | '.join(cells) + ' |'


def _table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
  return [_row(list(header)), _row(['---'] * len(header))] + [_row(r) for r in rows]


def _main_rows(modes: list[dict[str, Any]]) -> list[list[str]]:
  rows = []
  for m in modes:
    if m['status'] != 'ok':
      rows.append([m['name'], m['status']] + ['-'] * (len(_MAIN_COLUMNS) - 2))
      continue
    step = _spread(m['step_ms'], 1)
    if m['step_vs_roofline'] is not None:
      step += f' ({m["step_vs_roofline"]:.2f}x)'
    same = m['same_tokens_as_ar']
    rows.append([m['name'], 'ok', str(m['generated_tokens']), str(m['decode_steps']),
                 _num(m['steps_per_token'], 3), _num(m['mean_accepted_tokens']),
                 _spread(m['tokens_per_s']), _spread(m['speedup_vs_ar']),
                 _spread(m['ttft_ms'], 0), step,
                 '-' if m['peak_kv_pages'] is None else str(m['peak_kv_pages']),
                 _num(m['attended_kv_tokens_per_step'], 1), str(m['forks']),
                 '-' if same is None else f'{100 * same:.0f}%', _num(m['compile_s'], 1)])
  return rows


def _category_rows(modes: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[list[str]]]:
  """One row per category, one column per mode: accepted tokens per step, speed-up over AR."""
  ok = [m for m in modes if m['status'] == 'ok' and m.get('by_category')]
  categories = list(dict.fromkeys(c for m in ok for c in m['by_category']))
  header = ('category',) + tuple(m['name'] for m in ok)
  rows = [[c] + [(f'{_num(m["by_category"][c]["mean_accepted_tokens"])}, '
                  f'{_spread(m["by_category"][c]["speedup_vs_ar"])}')
                 if c in m['by_category'] else '-' for m in ok]
          for c in categories]
  return header, rows


def _kind_rows(modes: list[dict[str, Any]]) -> tuple[tuple[str, ...], list[list[str]]]:
  ok = [m for m in modes if m['status'] == 'ok']
  kinds = list(dict.fromkeys(k for m in ok for k in m['by_kind']))
  header = ('mode',) + tuple(f'{k}: steps/token, speed-up' for k in kinds)
  rows = [[m['name']] + [f'{_num(m["by_kind"][k]["steps_per_token"], 3)}, '
                         f'{_spread(m["by_kind"][k]["speedup_vs_ar"])}' for k in kinds]
          for m in ok]
  return header, rows


def _serving_lines(serving: dict[str, dict[str, Any]], settings: dict[str, Any]) -> list[str]:
  header = ('mode', 'status', 'completed', 'tokens', 'throughput tok/s', 'vs AR',
            'latency p50 / p90 / p99 s', 'p50 vs AR', 'p90 vs AR', 'TTFT p50 s', 'peak KV pages',
            'forks')
  rows = []
  for mode, s in serving.items():
    if s['status'] != 'ok':
      rows.append([mode, s['status']] + ['-'] * (len(header) - 2))
      continue
    lat = s['latency_s']
    rows.append([mode, 'ok', f'{s["completed"]}/{s["requests"]}', str(s['generated_tokens']),
                 _spread(s['throughput_tps']), _spread(s['throughput_vs_ar']),
                 f'{_num(lat["p50"])} / {_num(lat["p90"])} / {_num(lat["p99"])}',
                 _num(s['latency_p50_vs_ar']), _num(s['latency_p90_vs_ar']),
                 _num(s['ttft_s']['p50']), f'{s["peak_kv_pages"]} / {s["page_budget"]}',
                 str(s['forks'])])
  intro = (f'{settings["serving_requests"]} requests, Poisson arrivals at '
           f'{settings["serving_rate"]:g}/s (seed {settings["seed"]}), KV budget '
           f'{settings["serving_page_budget"]} pages, {settings["serving_slots"]} slots, '
           f'{settings["serving_chunk_steps"]} steps per chunk, {settings["max_new_tokens"]} new '
           f'tokens per request.')
  return [intro, ''] + _table(header, rows)


def _failures(report: dict[str, Any]) -> list[str]:
  lines = [f'- {m["name"]}: {m["status"]}: {m["reason"]}' for m in report['modes']
           if m['status'] != 'ok']
  lines += [f'- serving {k}: {s["status"]}: {s["reason"]}'
            for k, s in report['serving'].items() if s['status'] != 'ok']
  t = report.get('timeline')
  if t and t.get('status') != 'ok':
    lines.append(f'- branch timeline: failed: {t["reason"]}')
  return lines


def markdown(report: dict[str, Any], plots: Optional[dict[str, str]] = None) -> str:
  """The Markdown summary: settings line, latency table, per-kind table, serving, roofline."""
  meta, st = report['meta'], report['settings']
  kinds = ', '.join(f'{k} {sum(p["kind"] == k for p in report["prompts"])}'
                    for k in dict.fromkeys(p['kind'] for p in report['prompts']))
  out = [f'Config `{meta["config"]}`, {len(report["prompts"])} prompts ({kinds}), greedy, '
         f'{st["max_new_tokens"]} new tokens max, batch 1; medians over {st["repeats"]} '
         f'interleaved repetitions after a warm-up (min-max in brackets); {meta["backend"]} x '
         f'{meta["devices"]}, load average {meta["load_average_start"][0]:.1f} at start; '
         f'{meta["total_wall_s"] / 60:.1f} min in all.', '']
  if meta.get('command'):
    out += ['```', meta['command'], '```', '']
  apar_adapter = (report.get('models') or {}).get('apar_adapter')
  if apar_adapter:
    out += [f'APAR modes decode the APAR fine-tune (adapter `{apar_adapter}`); their speed-up and '
            'token agreement are against `ar_apar_model` (AR on that fine-tune). The other rows '
            'decode the base model.', '']
  out += _table(_MAIN_COLUMNS, _main_rows(report['modes'])) + ['']
  header, rows = _kind_rows(report['modes'])
  if rows:
    out += ['Per prompt kind (steps per token, speed-up over AR):', '']
    out += _table(header, rows) + ['']
  header, rows = _category_rows(report['modes'])
  if rows:
    out += ['Per category (tokens per step, speed-up over AR):', '']
    out += _table(header, rows) + ['']
  roof = report.get('roofline')
  if roof:
    samples = ', '.join(f'{b:.1f}' for b in roof['bandwidth_samples_gbps'])
    out += [f'Roofline: measured memory bandwidth {roof["bandwidth_gbps"]:.1f} GB/s (best of '
            f'{samples} GB/s at the start and end of the run), weights '
            f'{roof["weight_bytes"] / 1e6:.0f} MB -> a batch-1 step cannot beat '
            f'{roof["step_ms"]:.1f} ms; "step ms" = (answer time - TTFT) / (steps - 1).', '']
  if report['serving']:
    out += ['Serving under load:', ''] + _serving_lines(report['serving'], st) + ['']
  t = report.get('timeline')
  if t and t.get('status') == 'ok':
    out += [f'Branch timeline ({t["source"]}): {t["generated_tokens"]} tokens in '
            f'{t["decode_steps"]} steps, {t["forks"]} forks, up to {t["max_live_branches"]} '
            f'branches live.', '']
  failures = _failures(report)
  if failures:
    out += ['Not measured:', ''] + failures + ['']
  for title, path in (plots or {}).items():
    out += [f'![{title}]({path})', '']
  return '\n'.join(out)


def write_report(report: dict[str, Any], out_dir: str, json_path: Optional[str] = None,
                 plots: Optional[dict[str, str]] = None) -> tuple[str, str]:
  """Writes the JSON and the Markdown (plots linked relative to `out_dir`); returns both paths."""
  os.makedirs(out_dir, exist_ok=True)
  json_path = json_path or os.path.join(out_dir, 'bench_report.json')
  with open(json_path, 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1, ensure_ascii=False)
  md_path = os.path.join(out_dir, 'bench_report.md')
  with open(md_path, 'w', encoding='utf-8') as f:
    f.write(markdown(report, plots))
  return json_path, md_path
