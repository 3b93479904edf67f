"""Every failure answers with the OpenAI error object `{"error": {message, type, param, code}}`:
bad JSON or fields (400), unknown paths (404), full queue or a compiling engine (503 +
`Retry-After`), and anything unexpected (500, logged); the server keeps serving."""

import logging
from typing import Any, Optional

import fastapi
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apar_jax.serving.schemas import error_body

log = logging.getLogger('apar_jax.serving')

_TYPES = {400: 'invalid_request_error', 404: 'not_found_error', 405: 'invalid_request_error',
          413: 'invalid_request_error', 503: 'server_overloaded', 500: 'server_error'}


class APIError(Exception):
  """An error answer: HTTP `status` and the error object's fields."""

  def __init__(self, status: int, message: str, param: Optional[str] = None,
               code: Optional[str] = None, headers: Optional[dict[str, str]] = None):
    super().__init__(message)
    self.status, self.message, self.param, self.code = status, message, param, code
    self.headers = headers

  def response(self) -> JSONResponse:
    return JSONResponse(error_body(self.message, _TYPES.get(self.status, 'invalid_request_error'),
                                   self.param, self.code),
                        status_code=self.status, headers=self.headers)


_TYPE_TAGS = {'str', 'int', 'float', 'bool', 'list', 'dict', 'none'}


def _field_path(loc: tuple) -> list[str]:
  """The request fields of a pydantic error location, without 'body' and union member tags
  (`str`, `list[TextPart]`)."""
  return [str(x) for x in loc if x != 'body' and not (
      isinstance(x, str) and (x in _TYPE_TAGS or '[' in x or x[:1].isupper()))]


def _most_specific(errors: list[dict[str, Any]]) -> dict[str, Any]:
  """Of a union's complaints, the one that got deepest into the value (what the client meant)."""
  return max(errors, key=lambda e: len(_field_path(e.get('loc', ()))))


def _validation_message(error: dict[str, Any]) -> tuple[str, Optional[str]]:
  """(message, param) of one pydantic complaint."""
  loc = _field_path(error.get('loc', ()))
  param = '.'.join(loc) or None
  if error.get('type') == 'json_invalid':
    return f'the body is not valid JSON: {error.get("ctx", {}).get("error", error["msg"])}', None
  if error.get('type') == 'missing' and param is None:
    return 'the request needs a JSON body', None
  if error.get('type') == 'model_attributes_type' and param is None:
    return 'the body must be a JSON object', None
  got = error.get('input')
  shown = f' (got {got!r})' if param is not None and not isinstance(got, (dict, list)) else ''
  return (f'{param}: {error["msg"]}{shown}' if param else error['msg']), param


def install(app: fastapi.FastAPI) -> None:
  """Registers the handlers that turn every exception into an error object."""

  @app.exception_handler(APIError)
  async def _api_error(request: fastapi.Request, e: APIError) -> JSONResponse:
    del request
    return e.response()

  @app.exception_handler(RequestValidationError)
  async def _invalid(request: fastapi.Request, e: RequestValidationError) -> JSONResponse:
    del request
    errors = e.errors()
    message, param = (_validation_message(_most_specific(errors)) if errors
                      else ('invalid request', None))
    if len(errors) > 1:
      message += f' (and {len(errors) - 1} more problem{"s" if len(errors) > 2 else ""})'
    return APIError(400, message, param, 'invalid_value').response()

  @app.exception_handler(StarletteHTTPException)
  async def _http(request: fastapi.Request, e: StarletteHTTPException) -> JSONResponse:
    message = (f'no route {request.method} {request.url.path}' if e.status_code in (404, 405)
               else str(e.detail))
    return APIError(e.status_code, message).response()

  @app.exception_handler(Exception)
  async def _unexpected(request: fastapi.Request, e: Exception) -> JSONResponse:
    log.exception('unhandled error on %s %s', request.method, request.url.path)
    return APIError(500, f'internal error: {type(e).__name__}: {e}').response()
