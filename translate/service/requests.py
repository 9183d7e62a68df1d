"""Reading and checking HTTP requests for `translate serve`: every problem becomes an ApiError with its status
and a one-line message, which the app returns as JSON {"error": message} (never a traceback).

  400  empty body (and no query string), body not UTF-8, not JSON (nor form or multipart data), JSON with NaN
       or Infinity, numbers over Python's 4,300 digits, nesting deeper than the parser goes, a missing or
       mistyped field (the message names it), unknown language or model, search settings out of range
       (SearchConfig's bounds), a malformed glossary, a glossary without beam search
  408  the body did not arrive within read_timeout (the connection is closed)
  413  body over max_body_bytes, text over char_limit, more sentences than the queue holds
  415  a content type that is neither JSON nor a form (text/plain included: see the browser policy in
       translate/service/guard.py)

Every field a request can give is read by one of the functions here (string, integer, number, flag,
text_format, alternatives_of) or by texts_of; the numbers then go to SearchConfig, which bounds them. A
malformed request is a 400 naming the field, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from urllib.parse import parse_qsl

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from translate.data.lines import clean_text
from translate.search import SearchConfig
from translate.search.glossary import Glossary, GlossaryError, glossary_from_value

# SearchConfig field -> request field
FIELDS = {"beam_size": "beam", "nbest": "nbest", "alpha": "alpha", "max_len_a": "max_len_a",
          "max_len_b": "max_len_b", "batch_tokens": "batch_tokens"}  # fmt: skip
# the decoding settings a /v1/translate request may send, each under its SearchConfig field's name
REQUEST_FIELDS = ("strategy", "stopping", "sampling_topk", "sampling_topp", "sampling_temperature", "seed",
                  "no_repeat_ngram_size", "repetition_penalty", "repeat_guard")  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # what a form field may spell an integer as (ASCII digits only)


async def read_body(request: Request, max_bytes: int, read_timeout: float = 60.0) -> bytes:
    """The request body, refused (413) as soon as it passes max_bytes, declared or streamed; 408 when it has
    not arrived within read_timeout seconds, 499 when the client left."""
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]{1,18}", declared) and int(declared) > max_bytes:
        raise ApiError(413, f"request body of {int(declared)} bytes is over the limit of {max_bytes} bytes")
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise ApiError(413, f"request body is over the limit of {max_bytes} bytes")

    try:
        await asyncio.wait_for(read(), read_timeout)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {read_timeout:g} s",
                       {"Connection": "close"}) from None  # fmt: skip
    except ClientDisconnect:
        raise ApiError(499, "client closed the request") from None
    return bytes(body)


def _one_or_many(items) -> dict:
    """[(name, value), ...] -> {name: value, or [values] for a name given several times}."""
    grouped: dict[str, list] = {}
    for k, v in items:
        grouped.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


async def read_fields(request: Request, max_bytes: int, read_timeout: float = 60.0) -> dict:
    """The request's fields as LibreTranslate reads them: a JSON object body, form fields (urlencoded or
    multipart; a multipart file is a starlette UploadFile) and the query string (deep-translator sends its
    fields there with an empty body). A field in both the body and the query string takes the body's."""
    query = _one_or_many(request.query_params.multi_items())
    body = await read_body(request, max_bytes, read_timeout)
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
        try:
            form = parse_qsl(text, keep_blank_values=True, max_num_fields=1000)
        except ValueError as e:
            raise ApiError(400, f"request body is not a valid form ({e})") from None
        return {**query, **_one_or_many(form)}
    if kind not in ("", "application/json"):
        raise ApiError(415, f"unsupported content type {kind!r}: send JSON, "
                            "application/x-www-form-urlencoded or multipart/form-data")  # fmt: skip
    fields = parse_json(text)
    if not isinstance(fields, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(fields).__name__}")
    return {**query, **fields}


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses as inf
        raise ValueError(f"number {text} is out of range (JSON numbers must be finite)")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number (numbers must be finite)")


def parse_json(text: str):
    """json.loads that refuses NaN, Infinity and numbers that overflow a float (JSON has none of them;
    Python's parser accepts them), and turns every parser failure into a 400."""
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    except RecursionError:
        raise ApiError(400, "request body is not valid JSON here: nested too deeply") from None
    except ValueError as e:  # our refusals above, and Python's limit of 4,300 digits for an integer
        raise ApiError(400, f"request body is not valid JSON here: {e}") from None


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



def _shown(value) -> str:
    """A field's value for an error message: its repr, cut to 60 characters."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def string(fields: dict, name: str, default: str | None = None) -> str | None:
    value = fields.get(name, default)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string, got {_shown(value)}")
    return value


def integer(fields: dict, name: str, default: int) -> int:
    value = fields.get(name, default)
    if isinstance(value, str) and INTEGER.fullmatch(value.strip()):  # form fields are strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer, got {_shown(value)}")
    return value


def number(fields: dict, name: str, default: float) -> float:
    """A finite number (SearchConfig then checks its range)."""
    value = fields.get(name, default)
    if isinstance(value, str) and len(value) <= 40:
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"{name} must be a number, got {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer too large for a float
        raise ApiError(400, f"{name} must be a finite number, got {_shown(value)}") from None
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number, got {value}")
    return value


def flag(fields: dict, name: str, default: bool = False) -> bool:
    """true/false, 1/0, or their strings (a form's "true", "1", "on")."""
    value = fields.get(name, default)
    words = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "off": False,
             "no": False, "": False}  # fmt: skip
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ApiError(400, f"{name} must be true or false, got {_shown(value)}")


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
                    raise ApiError(400, f"{name} must be a string, got {_shown(fields[name])}")
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
    if isinstance(value, str):  # a form field: JSON text, read as strictly as a JSON body
        try:
            value = parse_json(value)
        except ApiError as e:
            why = e.message.replace("request body is not valid JSON", "not valid JSON")
            raise ApiError(400, f'glossary must be an object {{"source": "target"}} (JSON): {why}') from None
    try:
        return glossary_from_value(value)
    except GlossaryError as e:
        raise ApiError(400, str(e)) from None


def search_config(base: SearchConfig, max_beam: int, **changes) -> SearchConfig:
    """base with the request's settings; a bad value is a 400 naming the request field."""
    if changes.get("beam_size", base.beam_size) > max_beam:
        shown = _shown(changes["beam_size"])
        raise ApiError(400, f"beam must be at most {max_beam} on this server, got {shown}")
    try:
        return SearchConfig(**{**base.__dict__, **changes})
    except ValueError as e:
        field, rest = str(e).split(" ", 1)
        rest = rest if len(rest) <= 200 else rest[:197] + "..."
        raise ApiError(400, f"{FIELDS.get(field, field)} {rest}") from None
