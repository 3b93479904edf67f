"""The OpenAI-compatible HTTP API over one `EngineWorker` (FastAPI).

    GET  /health                200 once the engine has compiled, 503 before (or if it failed)
    GET  /v1/models             the config's model
    POST /v1/chat/completions   messages rendered with the config's chat template and system
                                prompt, exactly as `generate` renders a prompt
    POST /v1/completions        the prompt used as it is (as `generate --raw_prompt`)
    GET  /metrics               Prometheus text format

`stream: true` answers with server-sent events ending in `data: [DONE]`. Each response carries a
`decoding` field with the engine's statistics (mode, decode steps, forks, mean accepted tokens).
"""

import asyncio
import dataclasses
import json
import re
import time
import uuid
from typing import Any, AsyncIterator, Optional, Union

import fastapi
import prometheus_client
from fastapi.responses import JSONResponse, Response, StreamingResponse

from apar_jax.engine import Request
from apar_jax.engine.host.request_feed import QueueFull
from apar_jax.engine.host.requests import CapacityError
from apar_jax.serving import errors
from apar_jax.serving.errors import APIError
from apar_jax.serving.schemas import (ChatCompletionRequest, CompletionRequest, DecodingStats,
                                      error_body)
from apar_jax.serving.session import AnswerSession, EngineError, Finished
from apar_jax.serving.worker import EngineWorker
from apar_jax.tokenization import encode_chat

_REQUEST_PREFIX = re.compile(r'^request \d+: ')


@dataclasses.dataclass(frozen=True)
class ServeSettings:
  """What the API needs from the config: names, prompt rendering and sampling defaults."""
  model_name: str
  mode: str
  chat_template: str
  system_prompt: Optional[str]
  temperature: float
  top_p: float
  top_k: int
  seed: int
  retry_after_s: int = 1


def create_app(worker: EngineWorker, settings: ServeSettings) -> fastapi.FastAPI:
  """The app; the caller starts (and stops) the worker."""
  app = fastapi.FastAPI(title='apar-jax', version='0.1.0',
                        description=f'{settings.model_name} ({settings.mode} decoding)')
  errors.install(app)
  created = int(time.time())
  metrics = worker.metrics

  @app.middleware('http')
  async def _count(request: fastapi.Request, call_next):
    response = await call_next(request)
    route = request.scope.get('route')  # unmatched paths share one label
    metrics.requests.labels(getattr(route, 'path', 'unmatched'), str(response.status_code)).inc()
    return response

  def busy(message: str) -> APIError:
    return APIError(503, message, code='engine_unavailable',
                    headers={'Retry-After': str(settings.retry_after_s)})

  def require_ready() -> None:
    if not worker.ready:
      raise busy(worker.failure or 'the engine is still compiling; GET /health says when it is '
                 'ready')

  def unknown_model(name: str) -> APIError:
    return APIError(404, f'model {name!r} is not served here; this server serves '
                    f'{settings.model_name!r}', 'model', 'model_not_found')

  @app.get('/health')
  async def health() -> JSONResponse:
    if worker.failure is not None:
      return JSONResponse({'status': 'failed', 'error': worker.failure}, status_code=503)
    if not worker.ready:
      return JSONResponse({'status': 'compiling'}, status_code=503,
                          headers={'Retry-After': str(settings.retry_after_s)})
    return JSONResponse({'status': 'ok', 'model': settings.model_name, 'mode': settings.mode,
                         'compile_s': worker.compile_s})

  def model_card() -> dict[str, Any]:
    return {'id': settings.model_name, 'object': 'model', 'created': created,
            'owned_by': 'apar-jax'}

  @app.get('/v1/models')
  async def models() -> dict[str, Any]:
    return {'object': 'list', 'data': [model_card()]}

  @app.get('/v1/models/{model_id}')
  async def model(model_id: str) -> dict[str, Any]:
    if model_id != settings.model_name:
      raise unknown_model(model_id)
    return model_card()

  @app.get('/metrics')
  async def prometheus() -> Response:
    return Response(metrics.exposition(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

  def engine_request(body: Union[ChatCompletionRequest, CompletionRequest],
                     ids: list[int], prompt: str) -> Any:
    if body.model is not None and body.model != settings.model_name:
      raise unknown_model(body.model)
    pick = lambda value, default: default if value is None else value  # noqa: E731
    request = Request(prompt=prompt, token_ids=ids,
                      max_new_tokens=body.new_tokens(),  # None: the engine's default
                      temperature=pick(body.temperature, settings.temperature),
                      top_k=pick(body.top_k, settings.top_k), top_p=pick(body.top_p, settings.top_p),
                      seed=pick(body.seed, settings.seed) % 2**32)
    try:
      return worker.prepare(request)
    except CapacityError as e:
      message = _REQUEST_PREFIX.sub('', str(e))  # the engine's request index means nothing here
      if e.limit == 'pages':
        raise APIError(413, message, 'messages', 'kv_pages_exceeded') from e
      raise APIError(400, message, 'messages', 'context_length_exceeded') from e
    except ValueError as e:
      message = _REQUEST_PREFIX.sub('', str(e))
      param = 'max_tokens' if 'max_new_tokens' in message else None
      raise APIError(400, f'{param}: {message}' if param else message, param,
                     'invalid_value') from e

  def open_session(prepared: Any, body: Any) -> AnswerSession:
    try:
      return AnswerSession(worker, prepared, body.stop_list())
    except QueueFull as e:
      raise busy(f'the server is at capacity ({e}); retry in {settings.retry_after_s} s') from e
    except RuntimeError as e:  # NotReady, or the feed is closed (shutting down, engine failed)
      raise busy(str(e)) from e

  @app.post('/v1/chat/completions')
  async def chat(body: ChatCompletionRequest, http: fastapi.Request) -> Response:
    require_ready()
    messages = [{'role': m.role, 'content': m.text()} for m in body.messages]
    try:
      ids = encode_chat(worker.engine.tokenizer, messages, settings.chat_template,
                        system_prompt=settings.system_prompt)
    except ValueError as e:
      raise APIError(400, str(e), 'messages', 'invalid_value') from e
    prepared = engine_request(body, ids, messages[-1]['content'])
    return await answer(body, prepared, http, chat=True)

  @app.post('/v1/completions')
  async def completions(body: CompletionRequest, http: fastapi.Request) -> Response:
    require_ready()
    prepared = engine_request(body, worker.engine.tokenizer.encode(body.prompt), body.prompt)
    return await answer(body, prepared, http, chat=False)

  async def answer(body: Any, prepared: Any, http: fastapi.Request, chat: bool) -> Response:
    session = open_session(prepared, body)
    reply = _Reply(settings.model_name, settings.mode, chat)
    if body.stream:
      include_usage = body.stream_options is not None and body.stream_options.include_usage
      return StreamingResponse(_sse(session, reply, include_usage), media_type='text/event-stream',
                               headers={'Cache-Control': 'no-cache'})
    collect = asyncio.ensure_future(_collect(session))
    gone = asyncio.ensure_future(_disconnected(http))
    try:
      await asyncio.wait({collect, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
      gone.cancel()
    if not collect.done():  # the client left: free its branches, answer nobody
      collect.cancel()
      session.close()
      return Response(status_code=499)
    try:
      text, finished = collect.result()
    except EngineError as e:
      raise APIError(500, str(e), code='engine_failed') from e
    return JSONResponse(reply.whole(text, finished))

  return app


class _Reply:
  """Builds the OpenAI response bodies of one answer (chat or text completion)."""

  def __init__(self, model: str, mode: str, chat: bool):
    self.chat, self.model, self.mode = chat, model, mode
    self.id = f'{"chatcmpl" if chat else "cmpl"}-{uuid.uuid4().hex}'
    self.created = int(time.time())

  def _envelope(self, choices: list[dict[str, Any]], chunk: bool) -> dict[str, Any]:
    kind = ('chat.completion.chunk' if chunk else 'chat.completion') if self.chat else \
        'text_completion'
    return {'id': self.id, 'object': kind, 'created': self.created, 'model': self.model,
            'choices': choices}

  def _choice(self, text: Optional[str], finish_reason: Optional[str], chunk: bool,
              role: bool = False) -> dict[str, Any]:
    if not self.chat:
      return {'index': 0, 'text': text or '', 'finish_reason': finish_reason, 'logprobs': None}
    if chunk:
      delta: dict[str, Any] = {'role': 'assistant'} if role else {}
      if text is not None:
        delta['content'] = text
      return {'index': 0, 'delta': delta, 'finish_reason': finish_reason, 'logprobs': None}
    return {'index': 0, 'message': {'role': 'assistant', 'content': text},
            'finish_reason': finish_reason, 'logprobs': None}

  @staticmethod
  def usage(f: Finished) -> dict[str, int]:
    r = f.result
    return {'prompt_tokens': r.prompt_tokens, 'completion_tokens': r.num_generated_tokens,
            'total_tokens': r.prompt_tokens + r.num_generated_tokens}

  def decoding(self, f: Finished) -> dict[str, Any]:
    r = f.result
    return DecodingStats(mode=self.mode, decode_steps=r.decode_steps, forks=r.forks,
                         max_live_branches=r.max_live_branches,
                         mean_accepted_tokens=r.mean_accepted_tokens,
                         sampled_tokens=r.sampled_tokens, peak_kv_pages=r.peak_kv_pages,
                         cancelled=f.stopped_by_sequence).model_dump()

  def whole(self, text: str, f: Finished) -> dict[str, Any]:
    body = self._envelope([self._choice(text, f.finish_reason, chunk=False)], chunk=False)
    return dict(body, usage=self.usage(f), decoding=self.decoding(f))

  def first_chunk(self) -> dict[str, Any]:
    return self._envelope([self._choice('', None, chunk=True, role=True)], True)

  def piece(self, text: str) -> dict[str, Any]:
    return self._envelope([self._choice(text, None, chunk=True)], chunk=True)

  def last_chunk(self, f: Finished) -> dict[str, Any]:
    body = self._envelope([self._choice(None if self.chat else '', f.finish_reason, chunk=True)],
                          chunk=True)
    return dict(body, decoding=self.decoding(f))

  def usage_chunk(self, f: Finished) -> dict[str, Any]:
    return dict(self._envelope([], chunk=True), usage=self.usage(f))


def _event(body: dict[str, Any]) -> str:
  return f'data: {json.dumps(body, ensure_ascii=False)}\n\n'


async def _sse(session: AnswerSession, reply: _Reply, include_usage: bool) -> AsyncIterator[str]:
  """The server-sent events of a streamed answer; a client gone mid-answer cancels it."""
  try:
    if reply.chat:  # chat streams open with the assistant's role
      yield _event(reply.first_chunk())
    try:
      async for item in session.pieces():
        if isinstance(item, Finished):
          yield _event(reply.last_chunk(item))
          if include_usage:
            yield _event(reply.usage_chunk(item))
        else:
          yield _event(reply.piece(item))
    except EngineError as e:
      yield _event(error_body(str(e), 'server_error', None, 'engine_failed'))
    yield 'data: [DONE]\n\n'
  finally:
    session.close()  # no-op once finished


async def _collect(session: AnswerSession) -> tuple[str, Finished]:
  parts: list[str] = []
  async for item in session.pieces():
    if isinstance(item, Finished):
      return ''.join(parts), item
    parts.append(item)
  raise EngineError('the answer ended without a result')


async def _disconnected(http: fastapi.Request) -> None:
  """Returns when the client closes the connection (the body has been read already)."""
  while True:
    message = await http.receive()
    if message['type'] == 'http.disconnect':
      return
