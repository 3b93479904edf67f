"""The OpenAI-compatible request and response bodies (pydantic), as far as this server honours them.

Requests are validated strictly (a string where a number belongs is refused, not coerced) so a wrong
type answers 400 before anything reaches the engine; fields this server does not know are ignored,
as OpenAI clients send optional ones freely. Supported sampling fields: `max_tokens`
(`max_completion_tokens`), `temperature`, `top_p`, `seed`, `stop`, and `top_k` as an extension.
"""

from typing import Any, Literal, Optional, Union

import pydantic
from pydantic import Field

MAX_STOP_SEQUENCES = 4


class _Strict(pydantic.BaseModel):
  model_config = pydantic.ConfigDict(strict=True, extra='ignore')


class TextPart(_Strict):
  """One part of a message's content list; only text parts are accepted."""
  type: Literal['text']
  text: str


class ChatMessage(_Strict):
  role: Literal['system', 'user', 'assistant']
  content: Union[str, list[TextPart]]

  def text(self) -> str:
    return self.content if isinstance(self.content, str) else ''.join(p.text for p in self.content)


class StreamOptions(_Strict):
  include_usage: bool = False


class _Sampling(_Strict):
  """Fields shared by both endpoints. `None` = the config's `generate` default."""
  model: Optional[str] = None
  max_tokens: Optional[int] = Field(None, ge=1)
  max_completion_tokens: Optional[int] = Field(None, ge=1)
  temperature: Optional[float] = Field(None, ge=0.0, le=2.0)
  top_p: Optional[float] = Field(None, gt=0.0, le=1.0)
  top_k: Optional[int] = Field(None, ge=0)
  seed: Optional[int] = Field(None, ge=0, lt=2**63)
  stop: Optional[Union[str, list[str]]] = None
  n: int = Field(1, ge=1, le=1)
  stream: bool = False
  stream_options: Optional[StreamOptions] = None
  user: Optional[str] = None

  @pydantic.field_validator('stop')
  @classmethod
  def _stops(cls, value: Optional[Union[str, list[str]]]) -> Optional[Union[str, list[str]]]:
    stops = [value] if isinstance(value, str) else (value or [])
    if len(stops) > MAX_STOP_SEQUENCES:
      raise ValueError(f'at most {MAX_STOP_SEQUENCES} stop sequences, got {len(stops)}')
    if any(not s for s in stops):
      raise ValueError('stop sequences must not be empty')
    return value

  def stop_list(self) -> list[str]:
    return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

  def new_tokens(self) -> Optional[int]:
    return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class ChatCompletionRequest(_Sampling):
  messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(_Sampling):
  prompt: str = Field(min_length=1)  # rendered raw, as `generate --raw_prompt`


class Usage(pydantic.BaseModel):
  prompt_tokens: int
  completion_tokens: int
  total_tokens: int


class DecodingStats(pydantic.BaseModel):
  """This engine's statistics of one answer (the `decoding` extra field of a response)."""
  mode: str
  decode_steps: int  # engine steps in which the request had a live branch
  forks: int  # APAR branches spawned
  max_live_branches: int
  mean_accepted_tokens: float  # tokens per (live branch, step): > 1 when drafts were accepted
  sampled_tokens: int  # tokens of every branch, control and stop tokens included
  peak_kv_pages: int
  cancelled: bool = False  # cut by a stop sequence


def error_body(message: str, type_: str, param: Optional[str] = None,
               code: Optional[str] = None) -> dict[str, Any]:
  """The OpenAI error object."""
  return {'error': {'message': message, 'type': type_, 'param': param, 'code': code}}
