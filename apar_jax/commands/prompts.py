"""Reading prompts from the command line or a file (`encode_user_prompt` renders them)."""

import json
import os
from typing import Optional


def read_prompts(prompt: Optional[str], prompts_file: Optional[str]) -> list[str]:
  """Exactly one of --prompt / --prompts_file; .txt = one prompt per non-empty line, .jsonl = 'prompt'."""
  if (prompt is None) == (prompts_file is None):
    raise ValueError('pass exactly one of --prompt or --prompts_file')
  if prompt is not None:
    if not prompt.strip():
      raise ValueError('--prompt is empty')
    return [prompt]
  if not os.path.exists(prompts_file):
    raise FileNotFoundError(f'--prompts_file {prompts_file!r} does not exist')
  prompts = []
  with open(prompts_file, encoding='utf-8') as f:
    if prompts_file.endswith('.jsonl'):
      for n, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          record = json.loads(line)
        except json.JSONDecodeError as e:
          raise ValueError(f'{prompts_file}:{n}: not valid JSON ({e})') from e
        if not isinstance(record, dict) or not isinstance(record.get('prompt'), str):
          raise ValueError(f'{prompts_file}:{n}: each line needs a string "prompt" field')
        prompts.append(record['prompt'])
    elif prompts_file.endswith('.txt'):
      prompts = [line.rstrip('\n') for line in f if line.strip()]
    else:
      raise ValueError(f'--prompts_file must end in .txt or .jsonl, got {prompts_file!r}')
  if not prompts:
    raise ValueError(f'--prompts_file {prompts_file!r} holds no prompts')
  return prompts

