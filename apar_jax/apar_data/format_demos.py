"""Answer-format demonstrations shown to the teacher before a list request (context distillation).

    turns = demo_turns('bold_titles')      # [user, assistant] chat messages
    ids = encode_chat(tok, [*turns, {'role': 'user', 'content': request}], template)

A small base model answers many list requests in prose, or as a list whose items have no title
the extractor can split from a detail: such answers are dropped and teach no fork. One earlier
exchange in the format APAR forks (`N. **Title**: detail`) makes the teacher answer in it far more
often (`docs/apar_training.md`, section 3). Only the teacher sees the demonstration: the distilled
record keeps the request as the user wrote it, so the student learns to answer that way unprompted.
"""

from apar_jax.tokenization.chat_templates import Message

_FOCUS_REQUEST: Message = {'role': 'user',
                           'content': 'What are some ways to stay focused while studying?'}
_FOCUS_ITEMS = (
    '1. **Remove distractions**: Put your phone in another room and close tabs you do not need.\n'
    '2. **Work in short blocks**: Study for 25 minutes, then take a five-minute break.\n'
    '3. **Set a clear goal**: Decide what you want to finish before you sit down.\n'
    '4. **Keep your space tidy**: A clean desk makes it easier to think about one thing at a time.')
# The same four items with two sentences of detail each: the details are what the branches
# write in parallel, so the longer they are, the fewer sequential steps the answer takes.
_FOCUS_DETAILED_ITEMS = (
    '1. **Remove distractions**: Put your phone in another room and close tabs you do not need. '
    'Every alert pulls your attention away, and it takes minutes to settle back into the work.\n'
    '2. **Work in short blocks**: Study for 25 minutes, then take a five-minute break. Short '
    'blocks feel easy to start, and the breaks keep you fresh for the next one.\n'
    '3. **Set a clear goal**: Decide what you want to finish before you sit down. A goal such as '
    '"solve ten practice problems" tells you when you are done and keeps you from drifting.\n'
    '4. **Keep your space tidy**: A clean desk makes it easier to think about one thing at a time. '
    'Keep only the book and notes you need today within reach, and put the rest away.')

# name -> the demonstration exchange (a request outside the generator's topics, and its answer).
DEMOS: dict[str, tuple[Message, ...]] = {
    'bold_titles': (_FOCUS_REQUEST, {'role': 'assistant', 'content': _FOCUS_ITEMS}),
    # The same list after a line that says how many items follow: a root that has announced its
    # count has a reason to stop there (greedy decoding never takes a stop whose probability stays
    # under one half at every item, which is how an open-ended list runs on).
    'counted_titles': (_FOCUS_REQUEST, {'role': 'assistant', 'content': (
        'Here are 4 ways to stay focused while studying:\n\n' + _FOCUS_ITEMS)}),
    # The counted list with longer details (two sentences per item).
    'counted_details': (_FOCUS_REQUEST, {'role': 'assistant', 'content': (
        'Here are 4 ways to stay focused while studying:\n\n' + _FOCUS_DETAILED_ITEMS)}),
}


def demo_turns(name: str) -> list[Message]:
  """The chat messages of demonstration `name` ('' = none: an empty list)."""
  if not name:
    return []
  if name not in DEMOS:
    raise ValueError(f'unknown format demonstration {name!r}: choose one of {sorted(DEMOS)} '
                     "or '' for none (apar_jax/apar_data/format_demos.py)")
  return list(DEMOS[name])
