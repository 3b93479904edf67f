"""The loss curve of a run (from its metrics.jsonl) as a PNG."""

import json
import os

METRICS_FILE = 'metrics.jsonl'


def read_metrics(log_dir: str) -> list[dict]:
  """One dict per logged step; a step logged twice (a resumed run) keeps its last record."""
  path = os.path.join(log_dir, METRICS_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: train first (metrics are written to '
                            'train.log_dir)')
  by_step = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      if line.strip():
        record = json.loads(line)
        by_step[record['step']] = record
  return [by_step[s] for s in sorted(by_step)]


def plot_loss(log_dir: str, out_path: str, smooth: int = 10) -> str:
  """Writes the per-step loss and its running mean over `smooth` steps; returns the path."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  records = read_metrics(log_dir)
  steps = [r['step'] for r in records]
  loss = [r['loss'] for r in records]
  mean = [sum(loss[max(0, i - smooth + 1):i + 1]) / len(loss[max(0, i - smooth + 1):i + 1])
          for i in range(len(loss))]
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.plot(steps, loss, alpha=0.35, label='loss')
  ax.plot(steps, mean, label=f'running mean ({smooth} steps)')
  ax.set_xlabel('step')
  ax.set_ylabel('mean NLL per target token')
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  fig.savefig(out_path, dpi=100)
  plt.close(fig)
  return out_path
