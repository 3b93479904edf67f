"""Draws docs/img/layers.png: the layers contract of pyproject.toml (one row per layer, top to
bottom) with an arrow for every pair of packages one of which imports the other, from the import
graph (grimp, which import-linter checks with). Re-run after changing the layers:

    python docs/draw_layers.py [--out docs/img/layers.png]
"""

import argparse
import collections
import os
import tomllib

import grimp
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def layers_contract(pyproject: str) -> tuple[list[str], list[list[str]]]:
  """(root packages, layers top first, each a list of sibling packages) of the first layers
  contract."""
  with open(pyproject, 'rb') as f:
    linter = tomllib.load(f)['tool']['importlinter']
  contract = next(c for c in linter['contracts'] if c['type'] == 'layers')
  rows = [[m.strip() for m in layer.replace(':', '|').split('|')] for layer in contract['layers']]
  return linter['root_packages'], rows


def package_edges(roots: list[str], packages: list[str]) -> collections.Counter:
  """{(importer, imported): number of module-level import lines} between the listed packages."""
  graph = grimp.build_graph(*roots)
  owner = lambda m: next((p for p in packages if m == p or m.startswith(p + '.')), None)  # noqa: E731
  edges: collections.Counter = collections.Counter()
  for module in graph.modules:
    a = owner(module)
    for imported in graph.find_modules_directly_imported_by(module):
      b = owner(imported)
      if a and b and a != b:
        edges[(a, b)] += len(graph.get_import_details(importer=module, imported=imported)) or 1
  return edges


def draw(rows: list[list[str]], edges: collections.Counter, out: str) -> None:
  width = max(len(r) for r in rows)
  fig, ax = plt.subplots(figsize=(2.6 * width + 1, 0.9 * len(rows) + 0.6))
  where = {}
  for level, row in enumerate(rows):
    y = len(rows) - 1 - level
    for i, name in enumerate(row):
      x = (i - (len(row) - 1) / 2) * 2.6
      where[name] = (x, y)
      ax.add_patch(plt.Rectangle((x - 1.1, y - 0.28), 2.2, 0.56, facecolor='#dce9f5',
                                 edgecolor='#35618f', lw=1.2, zorder=2))
      ax.text(x, y, name.removeprefix('apar_jax.'), ha='center', va='center', fontsize=9,
              zorder=3)
  for (a, b), n in edges.items():
    (xa, ya), (xb, yb) = where[a], where[b]
    ax.annotate('', xy=(xb, yb + 0.28), xytext=(xa, ya - 0.28), zorder=1,
                arrowprops=dict(arrowstyle='->', color='#888888', lw=0.5 + min(n, 40) / 20,
                                shrinkA=0, shrinkB=0, connectionstyle='arc3,rad=0.08'))
  ax.set_xlim(-1.3 * width - 0.3, 1.3 * width + 0.3)
  ax.set_ylim(-0.6, len(rows) - 0.4)
  ax.axis('off')
  ax.set_title('apar_jax layers (pyproject.toml, enforced by lint-imports)\na package imports only '
               'from rows below its own; arrows: imports (width: import lines)', fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  fig.savefig(out, dpi=130)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(REPO_ROOT, 'docs', 'img', 'layers.png'))
  args = parser.parse_args()
  roots, rows = layers_contract(os.path.join(REPO_ROOT, 'pyproject.toml'))
  edges = package_edges(roots, [p for row in rows for p in row])
  draw(rows, edges, args.out)
  print(f'{args.out}: {len(rows)} layers, {len(edges)} package-to-package imports')


if __name__ == '__main__':
  main()
