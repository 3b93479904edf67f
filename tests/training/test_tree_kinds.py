"""`tree_kinds`: a structured answer of an excluded kind trains as plain, or is left out."""

import pytest

from training_fixtures import write_sharegpt

from apar_jax.apar_data.dataset import build_rows


@pytest.fixture(scope='module')
def tokenizer(load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  return load_tokenizer_from_config(load_config('tiny'))


def _build(path, tokenizer, tree_kinds, excluded_trees='plain'):
  """Rows of the trees alone (plain_fraction 0), and the counts before the mix."""
  return build_rows(path, tokenizer, chat_template='chatml', system_prompt=None, layout='packed',
                    plain_fraction=0.0, seq_len=160, max_branches=8, seed=0,
                    tree_kinds=tree_kinds, excluded_trees=excluded_trees)


def test_excluded_kind_becomes_plain(tmp_path, tokenizer):
  data = write_sharegpt(str(tmp_path / 'd.jsonl'), n=12)  # 4 list, 4 paragraph, 4 plain answers
  rows_all, both = _build(data, tokenizer, ('list', 'paragraphs'))
  rows_list, lists = _build(data, tokenizer, ('list',))
  assert (both.trees, both.plain) == (8, 4)
  assert (lists.trees, lists.plain) == (4, 8)
  assert lists.reasons['kind_paragraphs'] == 4
  # Fewer [Fork] targets: the paragraph answers' forks are gone, the list answers' stay.
  fork = tokenizer.fork_id
  forks_all = int(((rows_all.targets == fork) & (rows_all.weights > 0)).sum())
  forks_list = int(((rows_list.targets == fork) & (rows_list.weights > 0)).sum())
  assert 0 < forks_list < forks_all


def test_excluded_kind_can_be_dropped(tmp_path, tokenizer):
  data = write_sharegpt(str(tmp_path / 'd.jsonl'), n=12)
  _, stats = _build(data, tokenizer, 'paragraphs', excluded_trees='drop')  # a name = 1-tuple
  assert (stats.trees, stats.plain) == (4, 4)  # the 4 list answers are left out
  assert stats.reasons['kind_list'] == 4


def test_bad_values_are_refused_before_reading(tmp_path, tokenizer):
  missing = str(tmp_path / 'missing.jsonl')
  with pytest.raises(ValueError, match='tree_kinds must be'):
    _build(missing, tokenizer, ('tables',))
  with pytest.raises(ValueError, match='excluded_trees must be'):
    _build(missing, tokenizer, ('list',), excluded_trees='keep')
