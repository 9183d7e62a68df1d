"""LibreTranslate's endpoints (its libretranslate/app.py is the reference for every shape and status):

  POST /translate   {q: str | [str], source, target, format: "text", alternatives: N}
                    -> {translatedText: str | [str], alternatives?: [...], detectedLanguage? (auto)}
  GET  /languages   [{code, name, targets}] from the checkpoints' language pairs
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from translate.service.dispatch import pick, run
from translate.service.requests import ApiError, integer, read_fields, search_config, texts_of
from translate.service.state import state_of

router = APIRouter()
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
                  "pt": "Portuguese", "ca": "Catalan", "nl": "Dutch"}  # fmt: skip


@router.get("/languages")
async def languages(request: Request):
    by_src: dict[str, set[str]] = {}
    for s in state_of(request).served.values():
        by_src.setdefault(s.translator.langs.src, set()).add(s.translator.langs.tgt)
    codes = sorted(set(by_src) | {t for ts in by_src.values() for t in ts})
    names = LANGUAGE_NAMES
    return [{"code": c, "name": names.get(c, c), "targets": sorted(by_src.get(c, ()))} for c in codes]


@router.post("/translate")
async def translate(request: Request):
    state = state_of(request)
    config = state.config
    fields = await read_fields(request, config.max_body_bytes)
    texts, many = texts_of(fields, config.char_limit)
    if fields.get("format", "text") != "text":
        raise ApiError(400, f'format {fields.get("format")!r} is not supported: only "text"')
    s = pick(state, fields.get("source"), fields.get("target"))
    alternatives = integer(fields, "alternatives", 0)
    if not 0 <= alternatives <= config.max_beam - 1:
        raise ApiError(400, f"alternatives must be between 0 and {config.max_beam - 1}, got {alternatives}")
    n = alternatives + 1
    search = search_config(s.search, config.max_beam, nbest=n, beam_size=max(n, s.search.beam_size))
    plans, hyps, _ = await run(state, s, texts, search, request)
    found = [s.translator.texts(p, h, n) for p, h in zip(plans, hyps)]  # per text, per line, n texts
    alts = [["\n".join(line[i] for line in lines) for i in range(n)] for lines in found]  # per text
    body: dict = {"translatedText": [a[0] for a in alts] if many else alts[0][0]}
    if alternatives:
        body["alternatives"] = [a[1:] for a in alts] if many else alts[0][1:]
    if fields.get("source") in (None, "", "auto"):
        body["detectedLanguage"] = {"confidence": 100.0, "language": s.translator.langs.src}
    state.counters.count(200)
    return body
