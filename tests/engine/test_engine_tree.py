"""Tree reassembly: pre-order, control tokens dropped, each branch cut at its stop token."""

import pytest

from apar_jax.engine import Branch, reassemble, tree_signature

FORK, CHILD, EOS = 100, 101, 102


def test_list_answer_reassembles_in_reading_order():
  # parent: "1. A:" [Fork] "\n\n2. B:" [Fork] "\n\n" EOS ; children hold the details.
  root = Branch(0, -1, -1, 0, (1, 2, FORK, 3, 4, FORK, 5, EOS))
  first = Branch(1, 0, 2, 1, (10, 11, EOS))
  second = Branch(2, 0, 5, 1, (20, EOS))
  ids = reassemble([second, root, first], (FORK, CHILD), (EOS,))
  assert ids == [1, 2, 10, 11, 3, 4, 20, 5, EOS]


def test_nested_children_and_cut_at_stop():
  root = Branch(0, -1, -1, 0, (1, FORK, 2))  # hit its budget: no stop token
  child = Branch(1, 0, 1, 1, (10, FORK, 11, EOS))
  grandchild = Branch(2, 1, 1, 2, (20, 21, EOS, 99))  # anything after a stop is dropped
  assert reassemble([root, child, grandchild], (FORK, CHILD), (EOS,)) == [1, 10, 20, 21, 11, 2]


def test_signature_ignores_branch_numbering():
  a = [Branch(0, -1, -1, 0, (1, FORK, FORK, 2)), Branch(1, 0, 1, 1, (3,)), Branch(2, 0, 2, 1, (4,))]
  b = [Branch(0, -1, -1, 0, (1, FORK, FORK, 2)), Branch(7, 0, 2, 1, (4,)), Branch(5, 0, 1, 1, (3,))]
  assert tree_signature(a) == tree_signature(b)
  assert reassemble(a, (FORK,), (EOS,)) == reassemble(b, (FORK,), (EOS,)) == [1, 3, 4, 2]


def test_needs_exactly_one_root():
  with pytest.raises(ValueError, match='one root'):
    reassemble([Branch(1, 0, 0, 1, (1,))], (FORK,), (EOS,))
