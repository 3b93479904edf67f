"""Varied instruction prompts for self-distillation when no prompt file is given.

Topics crossed with instruction shapes (explain, list, compare, how-to, story, ...), shuffled with a
seed: enough variety for a drafter to learn the base model's own phrasing, with no dataset download.
"""

import random

TOPICS = (
    'photosynthesis', 'the water cycle', 'black holes', 'volcanoes', 'the immune system',
    'machine learning', 'the French Revolution', 'climate change', 'renewable energy', 'coffee',
    'the Roman Empire', 'sleep', 'electric cars', 'the internet', 'vaccines', 'honey bees',
    'the stock market', 'meditation', 'plate tectonics', 'the moon', 'recycling', 'chess',
    'the human heart', 'rainforests', 'social media', 'inflation', 'the printing press',
    'quantum computers', 'gardening', 'public speaking', 'time management', 'the ocean',
    'dinosaurs', 'earthquakes', 'nutrition', 'learning a language', 'running a marathon',
    'cloud computing', 'the Renaissance', 'bread baking', 'solar panels', 'friendship',
    'artificial intelligence', 'the Olympic Games', 'music theory', 'remote work', 'volunteering',
    'budgeting', 'the solar system', 'antibiotics', 'cybersecurity', 'urban planning', 'tea',
    'the Great Wall of China', 'photography', 'recycling plastics', 'electricity', 'deserts',
    'migration of birds', 'democracy', 'saving money', 'writing an essay', 'job interviews',
    'the theory of evolution', 'robots', 'smartphones', 'wind power', 'healthy breakfasts',
    'traveling on a budget', 'the Industrial Revolution', 'rivers', 'mountains', 'painting',
)

SHAPES = (
    'Explain {t} in simple terms.',
    'What are the main benefits of {t}?',
    'Give me five tips about {t}.',
    'List the key facts everyone should know about {t}.',
    'Write a short paragraph about {t}.',
    'Why is {t} important?',
    'Describe the history of {t} briefly.',
    'What are common misconceptions about {t}?',
    'How would you teach a child about {t}?',
    'Write a short story that involves {t}.',
    'What are the pros and cons of {t}?',
    'Summarize what scientists know about {t}.',
)


def prompt_bank(n: int, seed: int = 0) -> list[str]:
  """`n` distinct prompts (at most len(TOPICS) * len(SHAPES)), in a seeded random order."""
  all_prompts = [s.format(t=t) for t in TOPICS for s in SHAPES]
  if n > len(all_prompts):
    raise ValueError(f'the prompt bank holds {len(all_prompts)} prompts; asked for {n}: pass a '
                     'prompts file for more')
  rng = random.Random(seed)
  rng.shuffle(all_prompts)
  return all_prompts[:n]
