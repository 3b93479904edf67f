"""Constants of the shared tiny-model benchmark run (see conftest.py)."""

PROMPTS = [{'kind': 'list', 'prompt': 'List three fruits.'},
           {'kind': 'paragraph', 'prompt': 'Explain why the sky is blue.'},
           {'kind': 'plain', 'prompt': 'What is two plus two?'}]
BUDGET = 16
