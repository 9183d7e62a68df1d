"""Reading and checking HTTP requests for `translate serve`: every problem becomes an ApiError with its status
and a one-line message, which the app returns as JSON {"error": message} (never a traceback).

  400  empty body (and no query string), body not UTF-8, not JSON (nor form or multipart data), a missing
       or mistyped field, unknown language or model, search settings out of range, a malformed glossary, a
       glossary without beam search
  413  body over max_body_bytes, text over char_limit, more sentences than the queue holds
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from translate.data.lines import clean_text
from translate.search import SearchConfig
from translate.search.glossary import Glossary, GlossaryError, glossary_from_value

# SearchConfig field -> request field
FIELDS = {"beam_size": "beam", "nbest": "nbest", "alpha": "alpha", "max_len_a": "max_len_a",
          "max_len_b": "max_len_b", "max_tokens": "max_tokens"}  # fmt: skip
# the decoding settings a /v1/translate request may send, each under its SearchConfig field's name
REQUEST_FIELDS = ("strategy", "sampling_topk", "sampling_topp", "sampling_temperature", "seed",
                  "no_repeat_ngram_size", "repetition_penalty", "repeat_guard")  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it passes max_bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"request body of {int(declared)} bytes is over the limit of {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, f"request body is over the limit of {max_bytes} bytes")
    return bytes(body)


def _one_or_many(items) -> dict:
    """[(name, value), ...] -> {name: value, or [values] for a name given several times}."""
    grouped: dict[str, list] = {}
    for k, v in items:
        grouped.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


async def read_fields(request: Request, max_bytes: int) -> dict:
    """The request's fields as LibreTranslate reads them: a JSON object body, form fields (urlencoded or
    multipart; a multipart file is a starlette UploadFile) and the query string (deep-translator sends its
    fields there with an empty body). A field in both the body and the query string takes the body's."""
    query = _one_or_many(request.query_params.multi_items())
    body = await read_body(request, max_bytes)
    if not body.strip():
        if query:
            return query
        raise ApiError(400, 'empty request body: send a JSON object such as {"q": "Hola."}')
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        return {**query, **await _multipart(request, body)}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {e.start})") from None
    if kind == "application/x-www-form-urlencoded" and not text.lstrip().startswith("{"):  # (curl -d '{...}')
        return {**query, **_one_or_many(parse_qsl(text, keep_blank_values=True))}
    if kind not in ("", "application/json", "text/plain"):
        raise ApiError(400, f"unsupported content type {kind!r}: send JSON, "
                            "application/x-www-form-urlencoded or multipart/form-data")  # fmt: skip
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    if not isinstance(fields, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(fields).__name__}")
    return {**query, **fields}


async def _multipart(request: Request, body: bytes) -> dict:
    """multipart/form-data -> fields: text parts as str, file parts as UploadFile (python-multipart)."""

    async def stream():
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=4, max_fields=64, max_part_size=len(body))
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise ApiError(400, f"multipart body: {e.message}") from None
    fields = _one_or_many(form.multi_items())
    for k, v in fields.items():
        if isinstance(v, bytes):
            fields[k] = v.decode("utf-8", "replace")
    return fields


def text_format(fields: dict) -> str:
    """format: "text" (also when null, empty or absent, as LibreTranslate) or "html"."""
    value = fields.get("format")
    if value in (None, ""):
        return "text"
    if value not in ("text", "html"):
        raise ApiError(400, f'format must be "text" or "html", got {value!r}')
    return value


def alternatives_of(fields: dict, most: int) -> int:
    """alternatives: an integer, below 0 counts as 0 (as LibreTranslate); over `most` is a 400."""
    n = max(0, integer(fields, "alternatives", 0))
    if n > most:
        raise ApiError(400, f"alternatives must be at most {most} on this server, got {n}")
    return n


def texts_of(fields: dict, char_limit: int) -> tuple[list[str], bool]:
    """q as a list of texts, and whether q was a list (the answer mirrors it); checks the char limit."""
    if "q" not in fields:
        raise ApiError(400, "missing field q (the text to translate, a string or a list of strings)")
    q = fields["q"]
    many = isinstance(q, list)
    texts = q if many else [q]
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(400, "q must be a string or a list of strings")
    chars = sum(len(t) for t in texts)
    if chars > char_limit:
        raise ApiError(413, f"q has {chars} characters, over this server's limit of {char_limit}")
    return [clean_text(t)[0] for t in texts], many  # lone surrogates (JSON "\\ud800") -> U+FFFD



def integer(fields: dict, name: str, default: int) -> int:
    value = fields.get(name, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # form fields are strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer, got {value!r}")
    return value


def number(fields: dict, name: str, default: float) -> float:
    value = fields.get(name, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{name} must be a number, got {value!r}")
    return float(value)


def request_search(fields: dict, base: SearchConfig, max_beam: int) -> SearchConfig:
    """/v1/translate's search: base (the model's defaults) with the request's beam, nbest, alpha and every
    REQUEST_FIELDS field it sends, each checked by its SearchConfig type; greedy and sample give nbest 1."""
    beam = integer(fields, "beam", base.beam_size)
    changes: dict = {"beam_size": beam, "alpha": number(fields, "alpha", base.alpha)}
    for name in REQUEST_FIELDS:
        if name in fields:
            default = getattr(base, name)
            kind = type(default)
            if kind is str:
                if not isinstance(fields[name], str):
                    raise ApiError(400, f"{name} must be a string, got {fields[name]!r}")
                changes[name] = fields[name]
            else:
                read = integer if kind is int else number
                changes[name] = read(fields, name, default)
    one = changes.get("strategy", base.strategy) != "beam"
    changes["nbest"] = integer(fields, "nbest", 1 if one else min(base.nbest, beam))
    return search_config(base, max_beam, **changes)


def request_glossary(fields: dict) -> Glossary | None:
    """The request's glossary field ({"source": "target"} or [[source, target], ...]), None when absent."""
    value = fields.get("glossary")
    if value is None or value == {} or value == []:
        return None
    if isinstance(value, str):  # a form field: JSON text
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ApiError(400, 'glossary must be an object {"source": "target"} (JSON)') from None
    try:
        return glossary_from_value(value)
    except GlossaryError as e:
        raise ApiError(400, str(e)) from None


def search_config(base: SearchConfig, max_beam: int, **changes) -> SearchConfig:
    """base with the request's settings; a bad value is a 400 naming the request field."""
    if changes.get("beam_size", base.beam_size) > max_beam:
        raise ApiError(400, f"beam must be at most {max_beam} on this server, got {changes['beam_size']}")
    try:
        return SearchConfig(**{**base.__dict__, **changes})
    except ValueError as e:
        field, rest = str(e).split(" ", 1)
        raise ApiError(400, f"{FIELDS.get(field, field)} {rest}") from None
