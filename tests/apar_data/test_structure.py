"""Structure extraction: the rules on hand-written answers, and exact reassembly (hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax.apar_data.answer_tree import AnswerTree, reassemble
from apar_jax.apar_data.structure import extract_tree

LIST = ('Here are some tips to sleep better:\n\n1. Keep a schedule: Go to bed at the same time.\n\n'
        '2. **Avoid screens**: Blue light keeps you awake longer.\n\n3. **Exercise:** Move your body '
        'during the day.\n\nFollowing these will help you rest.')
PARAGRAPHS = ('Paris is the capital of France. It is known for its museums and food.\n\n'
              'The Eiffel Tower is a landmark. It was built in 1889 for the World Fair.\n\n'
              'Paris has many parks. The Luxembourg Gardens are among the most famous.')


def test_ordered_list_forks_after_each_title():
  tree = extract_tree(LIST).tree
  assert tree.kind == 'list'
  assert tree.parts[0].endswith('1. Keep a schedule:')
  assert tree.parts[1] == '\n\n2. **Avoid screens**:'
  assert tree.parts[2] == '\n\n3. **Exercise:**'
  assert tree.details == (' Go to bed at the same time.', ' Blue light keeps you awake longer.',
                          ' Move your body during the day.')
  assert tree.parts[3] == '\n\nFollowing these will help you rest.'
  assert reassemble(tree) == LIST
  assert tree.parent_text().count('[Fork]') == 3


def test_a_numbered_list_may_start_again_at_one():
  text = ('Pros:\n\n1. **Fresh air**: You spend hours outside.\n2. **Calm**: Waiting by the water '
          'slows you down.\n\nCons:\n\n1. **Cost**: Gear and licences add up.\n2. **Time**: A '
          'trip takes a whole day.\n\nEnjoy it!')
  tree = extract_tree(text).tree
  assert tree is not None and tree.kind == 'list' and len(tree.details) == 4
  assert tree.details[1] == ' Waiting by the water slows you down.'
  assert tree.parts[2] == '\n\nCons:\n\n1. **Cost**:'  # the heading stays in the parent
  assert reassemble(tree) == text


def test_bullets_and_paragraphs():
  bullets = '- Apples: They are crunchy and sweet.\n- Pears: They are soft and juicy.\n- Plums: ' \
            'They are small and tart.'
  tree = extract_tree(bullets).tree
  assert tree.kind == 'list' and tree.num_forks == 3 and reassemble(tree) == bullets
  tree = extract_tree(PARAGRAPHS).tree
  assert tree.kind == 'paragraphs'
  assert tree.parts[0] == 'Paris is the capital of France. '
  assert tree.details[0] == 'It is known for its museums and food.'
  assert reassemble(tree) == PARAGRAPHS


def test_filters():
  two_items = '1. A: long enough detail.\n2. B: long enough detail.'
  assert extract_tree(two_items).reason == 'no_structure'
  short = '1. A: short.\n2. B: long enough detail.\n3. C: long enough detail.'
  assert extract_tree(short).tree is None
  nested = ('1. A: long enough detail.\n   1. sub item here\n2. B: long enough detail.\n'
            '3. C: long enough detail.')
  assert extract_tree(nested).tree is None
  gap = '1. A: long enough detail.\n3. B: long enough detail.\n4. C: long enough detail.'
  assert extract_tree(gap).tree is None
  restart_at_two = ('1. A: long enough detail.\n2. B: long enough detail.\n3. C: long enough '
                    'detail.\n2. D: long enough detail.')
  assert extract_tree(restart_at_two).tree is None
  for text, reason in ((LIST + '\n```py\nx = 1\n```', 'code'), (LIST + ' See https://x.org', 'link'),
                       (LIST + ' $x^2$ here', 'maths'), (LIST + ' <b>bold</b>', 'html'),
                       (LIST + '\n| a | b |', 'table'), (LIST + ' Привет', 'non_latin'),
                       (LIST + ' [Fork]', 'control_token_text')):
    assert extract_tree(text).reason == reason, text
  assert extract_tree('One line answer.').tree is None
  two_paragraphs = PARAGRAPHS.rsplit('\n\n', 1)[0]
  assert extract_tree(two_paragraphs).tree is None


_WORD = st.text(alphabet='abcdefghij KLMNOP,', min_size=1, max_size=12)
_TEXT = st.lists(st.sampled_from(list('abcXYZ .,:;-*!?\n\t12') + ['**', '1. ', '2. ', '3. ', '\n\n',
                                                                    '- ', 'Word word. ']),
                 max_size=60).map(''.join)


@st.composite
def structured_answers(draw):
  """Answers built like model outputs: intro, numbered/bulleted items, outro."""
  style = draw(st.sampled_from(['numbered', 'bold', 'bold_colon', 'dash']))
  n = draw(st.integers(3, 7))
  sep = draw(st.sampled_from(['\n', '\n\n']))
  items = []
  for i in range(n):
    title = draw(st.text(alphabet='abcdef ghij', min_size=1, max_size=20)).strip() or 'x'
    detail = ' ' + draw(st.text(alphabet='abcdefgh ij,.;!', min_size=10, max_size=60)).strip()
    if len(detail.strip()) < 10:
      detail = ' ' + 'd' * 12
    head = {'numbered': f'{i + 1}. {title}:', 'bold': f'{i + 1}. **{title}**:',
            'bold_colon': f'{i + 1}. **{title}:**', 'dash': f'- {title}:'}[style]
    items.append(head + detail)
  intro = draw(st.sampled_from(['', 'Sure! Here is a list:\n\n', 'Tips:\n']))
  outro = draw(st.sampled_from(['', '\n\nHope this helps.', '\n\nIn short, do these.']))
  return intro + sep.join(items) + outro, n


@settings(max_examples=300, deadline=None)
@given(structured_answers())
def test_structured_answers_are_found_and_reassemble(answer_and_n):
  answer, n = answer_and_n
  tree = extract_tree(answer).tree
  assert tree is not None and tree.kind == 'list' and tree.num_forks == n
  assert reassemble(tree) == answer
  assert all(d.startswith(' ') for d in tree.details)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_TEXT, _WORD), max_size=8).map(''.join))
def test_any_text_reassembles_exactly(text):
  tree = extract_tree(text).tree
  if tree is not None:
    assert reassemble(tree) == text
    assert all(len(d.strip()) >= 10 for d in tree.details)


def test_tree_shape_is_checked():
  try:
    AnswerTree('list', ('a',), ('b',))
  except ValueError as e:
    assert 'len(parts)' in str(e)
  else:
    raise AssertionError('expected ValueError')
