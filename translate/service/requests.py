"""Reading and checking HTTP requests for `translate serve`: every problem becomes an ApiError with its status
and a one-line message, which the app returns as JSON {"error": message} (never a traceback).

  400  empty body, body not UTF-8, not JSON (or form data), a missing or mistyped field, unknown language
       or model, search settings out of range, a malformed glossary, a glossary without beam search
  413  body over max_body_bytes, text over char_limit, more sentences than the queue holds
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

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


async def read_fields(request: Request, max_bytes: int) -> dict:
    """The request's fields from a JSON object body or a form (LibreTranslate clients send either)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, f"request body of {int(declared)} bytes is over the limit of {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, f"request body is over the limit of {max_bytes} bytes")
    if not body.strip():
        raise ApiError(400, 'empty request body: send a JSON object such as {"q": "Hola."}')
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {e.start})") from None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded" and not text.lstrip().startswith("{"):  # (curl -d '{...}')
        form = parse_qs(text, keep_blank_values=True)
        return {k: v[0] if len(v) == 1 else v for k, v in form.items()}
    if kind not in ("", "application/json", "text/plain"):
        raise ApiError(
            400, f"unsupported content type {kind!r}: send JSON or application/x-www-form-urlencoded"
        )
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"request body is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from None
    if not isinstance(fields, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(fields).__name__}")
    return fields


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
