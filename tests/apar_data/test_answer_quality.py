"""Quality signals of an answer (items, duplicate titles, empty details, 4-gram loops), each both ways."""

from apar_jax.apar_data.answer_quality import answer_quality, list_items

GOOD = '''Here are some tips:

1. **Plan ahead**: Write down what you want to do each day.
2. **Rest well**: Sleep seven to nine hours every night.
3. **Move more**:
   - walk for twenty minutes
   - take the stairs at work
4. Eat breakfast before you leave the house.

Good luck!'''


def test_items_titles_details_and_nested_bullets():
  items = list_items(GOOD)
  assert [i.title for i in items] == ['Plan ahead', 'Rest well', 'Move more', '']
  assert items[2].detail.startswith('- walk') and 'stairs' in items[2].detail
  assert items[3].detail == 'Eat breakfast before you leave the house.'  # 'Good luck!' is not in it
  q = answer_quality(GOOD)
  assert (q.num_items, q.duplicate_titles, q.empty_details, q.has_loop) == (4, 0, 0, False)


def test_inline_numbers_are_items_and_empty():
  text = '1. Create a sleep routine and keep it, 2. Avoid screens at night, 9. 3. 4. 5.'
  assert len(list_items('1. Create a sleep routine and keep it, 2. Avoid screens at night, 3. 4. 5.')) == 5
  q = answer_quality('1. Create a sleep routine and keep it, 2. Avoid screens at night, 3. 4. 5.')
  assert q.empty_details == 3
  items = list_items(text)  # '9.' is not the next number: it stays in item 2
  assert len(items) == 5 and items[1].detail == 'Avoid screens at night, 9.'


def test_duplicate_titles_both_ways():
  dup = '1. **Choose a Location**: somewhere sunny and flat.\n2. **choose a location:** near water.\n'
  assert answer_quality(dup).duplicate_titles == 1
  assert answer_quality(dup.replace('choose a location', 'Pick seeds')).duplicate_titles == 0


def test_a_list_locks_when_one_title_comes_five_times():
  items = ['Plan ahead', 'Rest well', 'Set up a firewall', 'Install a router']
  items += ['Set up a firewall', 'Install a router'] * 3 + ['set up a FIREWALL']  # 5 times
  text = '\n'.join(f'{n}. **{t}**: Do it this way today.' for n, t in enumerate(items, 1))
  q = answer_quality(text)
  assert (q.max_title_repeats, q.locked) == (5, True)
  q = answer_quality(text.rsplit('\n', 1)[0])  # without the fifth one
  assert (q.max_title_repeats, q.locked) == (4, False)
  assert answer_quality('No list here.').max_title_repeats == 0


def test_empty_details_both_ways_and_the_cut_last_item():
  titles_only = '1. **Choose a Location**:\n2. **Select Seeds**:\n3. **Plan Your Garden**: Draw it.'
  assert answer_quality(titles_only).empty_details == 3  # 'Draw it.' has 2 words
  full = ('1. **Choose a Location**: pick a sunny spot.\n2. **Select Seeds**: buy easy ones first.\n'
          '3. **Plan**:')
  assert answer_quality(full, finished=True).empty_details == 1
  assert answer_quality(full, finished=False).empty_details == 0  # the budget cut the last item


def test_loops_both_ways():
  loop = 'I love my garden. ' + 'The plants grow tall and green every day. ' * 3
  q = answer_quality(loop)
  assert q.has_loop and q.loops_for_good and q.max_span_count == 3  # a sentence said three times
  assert not answer_quality(GOOD).has_loop
  assert answer_quality(GOOD).repeated_4grams == 0
  # A name said four times in an answer about it is not a loop; the same 4-gram six times is.
  name = ('The Hubble Space Telescope was launched in 1990. Astronomers used the Hubble Space '
          'Telescope to measure how fast the universe grows. Images from the Hubble Space Telescope '
          'fill textbooks. Its successor joined the Hubble Space Telescope in 2021.')
  q = answer_quality(name)
  assert q.max_4gram_count == 4 and not q.has_loop
  six = ' '.join(f'You can try a {w}.' for w in ('cake', 'pie', 'tart', 'bun', 'roll', 'scone'))
  q = answer_quality(six)
  assert q.max_4gram_count == 6 and q.has_loop and q.loops_for_good
  # many repeats, none frequent: the repeated share decides (and a longer answer may dilute it)
  spread = ' '.join(f'alpha beta gamma delta {w}' for w in ('one', 'two', 'three'))
  q = answer_quality(spread)
  assert q.max_4gram_count == 3 and q.repeated_4grams == 2
