"""Every notebook of notebooks/ runs top to bottom in a fresh kernel (this Python, cwd = repository
root) in under 5 minutes on CPU, and its outputs show what it promises (figures, tables, checks).

The executed copies are not saved: `python notebooks/execute.py` refreshes the committed outputs.
"""

import importlib.util
import os
import re

import pytest

pytest.importorskip('nbclient')
pytest.importorskip('nbformat')
pytest.importorskip('ipykernel')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMIT_S = 300
CELL_TIMEOUT_S = 600


def _executor():
  spec = importlib.util.spec_from_file_location(
      'notebooks_execute', os.path.join(REPO_ROOT, 'notebooks', 'execute.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _run(name):
  """(outputs of every code cell, seconds) of a fresh execution of notebooks/<name>.ipynb."""
  execute = _executor()
  nb, seconds = execute.execute_notebook(execute.notebook_path(name), timeout=CELL_TIMEOUT_S)
  outputs = [o for cell in nb.cells if cell.cell_type == 'code' for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  return outputs, seconds


def _text(outputs):
  parts = []
  for o in outputs:
    if o.output_type == 'stream':
      parts.append(o.text)
    elif 'data' in o:
      parts.append(o.data.get('text/markdown', '') + o.data.get('text/plain', ''))
  return '\n'.join(parts)


def _images(outputs):
  return [o for o in outputs if 'data' in o and 'image/png' in o.data]


def _check_structure(name):
  import nbformat
  nb = nbformat.read(os.path.join(REPO_ROOT, 'notebooks', f'{name}.ipynb'), as_version=4)
  nbformat.validate(nb)
  first = nb.cells[0]
  assert first.cell_type == 'markdown'
  assert 'colab.research.google.com/github/' in first.source
  assert f'/blob/main/notebooks/{name}.ipynb' in first.source
  code = [c for c in nb.cells if c.cell_type == 'code']
  assert 'pip' in code[0].source and 'install' in code[0].source
  assert sum('parameters' in c.metadata.get('tags', []) for c in code) == 1


@pytest.mark.parametrize('name', ['quickstart', 'apar_finetuning', 'kernels'])
def test_notebook_structure(name):
  _check_structure(name)


@pytest.mark.slow
def test_kernels_notebook():
  outputs, seconds = _run('kernels')
  assert seconds < LIMIT_S
  text = _text(outputs)
  assert 'max |pallas_interpret - reference| =' in text
  assert "lowered for ('tpu',)" in text
  assert len(_images(outputs)) >= 1  # the attention-mask picture


@pytest.mark.slow
@pytest.mark.smollm2
def test_apar_finetuning_notebook():
  outputs, seconds = _run('apar_finetuning')
  assert seconds < LIMIT_S
  text = _text(outputs)
  assert 'numbered list: list, 5 forks' in text and 'code: no tree (code)' in text
  assert 'saving' in text and 'loss: first' in text
  first, last = map(float, re.search(r'loss: first ([\d.]+), last ([\d.]+)', text).groups())
  assert last < first  # the short LoRA run learns
  assert len(_images(outputs)) >= 2  # the layout figure and the loss curve


@pytest.mark.slow
@pytest.mark.smollm2
def test_quickstart_notebook():
  outputs, seconds = _run('quickstart')
  assert seconds < LIMIT_S
  text = _text(outputs)
  table = [o.data['text/markdown'] for o in outputs
           if 'data' in o and 'text/markdown' in o.data and 'speed-up' in o.data['text/markdown']]
  assert len(table) == 1
  for mode in ('ar', 'apar', 'medusa', 'apar_medusa'):
    assert f'| {mode} |' in table[0]
  assert table[0].count(': yes |') == 2  # speculative decoding is lossless (greedy)
  assert '=== apar (' in text
  assert len(_images(outputs)) >= 1  # the branch timeline
