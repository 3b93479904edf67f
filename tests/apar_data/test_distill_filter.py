"""The distillation's keep / drop rules on small hand-made answers, each rule both ways."""

import pytest

from apar_jax.apar_data.distill_filter import hopeless, judge

LIST = ('Here you go:\n\n1. **Water**: Give the plant water once a week.\n'
        '2. **Light**: Put it near a bright window.\n3. **Soil**: Use a light potting mix.\n\nEnjoy!')
PARAGRAPHS = ('Volcanoes form where magma rises. They are found along plate edges and hot spots.\n\n'
              'Eruptions differ a lot. Some are quiet lava flows while others explode violently.\n\n'
              'People live near them anyway. The soil around a volcano is very fertile for crops.')


def test_good_answers_are_kept_with_their_tree_kind():
  assert judge(LIST, True, 'list') == judge(LIST, True, 'list')
  assert (judge(LIST, True, 'list').kept, judge(LIST, True, 'list').tree_kind) == (True, 'list')
  assert judge(PARAGRAPHS, True, 'paragraphs').tree_kind == 'paragraphs'
  assert judge(LIST, True, 'paragraphs').kept  # a list answer to a paragraph request is fine
  plain = judge('Photosynthesis turns light into sugar.', True, 'plain')
  assert plain.kept and plain.tree_kind == ''


@pytest.mark.parametrize('text, finished, kind, reason', [
    (LIST, False, 'list', 'budget'),
    (LIST + '\n```python\nprint(1)\n```', True, 'list', 'code'),
    (LIST + ' See https://example.com', True, 'list', 'link'),
    (LIST.replace('Enjoy!', 'Enjoy your plant! ' * 5), True, 'list', '4gram_loop'),
    ('Water it. Give it light. Use good soil.', True, 'list', 'no_structure'),
    (LIST.replace('**Soil**', '**Water**'), True, 'list', 'duplicate_titles'),
    (LIST.replace('Use a light potting mix.', 'Potting mixes.'), True, 'list', 'empty_item'),
    (LIST, True, 'plain', 'structured_plain'),
    ('Try:\n- one idea here\n- another idea here', True, 'plain', 'structured_plain'),
])
def test_each_drop_reason(text, finished, kind, reason):
  verdict = judge(text, finished, kind)
  assert (verdict.kept, verdict.reason, verdict.tree_kind) == (False, reason, '')


def test_bad_kind():
  with pytest.raises(ValueError, match='request kind'):
    judge(LIST, True, 'poem')


def test_hopeless_only_when_more_tokens_cannot_save_the_answer():
  assert hopeless(LIST) == ''
  looping = LIST + ' Enjoy your plant, it will thank you!' * 4
  assert hopeless(looping) == '4gram_loop'
  assert judge(looping, True, 'list').reason == '4gram_loop'  # the full answer is dropped too
  for cut in range(0, len(LIST), 40):  # a clean answer is never given up on along the way
    assert hopeless(LIST[:cut]) == ''
