"""LibreTranslate's endpoints (its libretranslate/app.py is the reference for every shape and status):

  POST /translate          {q: str | [str], source (a code or "auto"), target, format: "text" | "html",
                           alternatives: N, api_key?} -> {translatedText: str | [str], alternatives?,
                           detectedLanguage? (source "auto": one object, or one per text for a list)}
  POST /detect             {q: str | [str], api_key?} -> [{language, confidence (0-100)}], best first
  POST /translate_file     multipart {file, source, target, api_key?} -> {translatedFileUrl}: .txt .html .srt
                           .docx .odt (translate/service/documents.py); refusals are 400s with the reason
  GET  /download_file/NAME the translated file, for file_ttl seconds (translate/service/downloads.py)
  GET  /languages          [{code, name, targets}] from the served models' language pairs
  GET  /frontend/settings  what LibreTranslate's web frontend reads (limits, keys, files, languages)
  POST /suggest            403, as LibreTranslate with suggestions off

Fields come from JSON, form, multipart or the query string (requests.read_fields); every translating or
detecting request passes access.Access.check first (keys, limits).
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from translate.service.dispatch import pick, run
from translate.service.documents import FORMATS, DocumentError, translate_document, unsupported
from translate.service.requests import (
    ApiError,
    alternatives_of,
    read_fields,
    request_glossary,
    search_config,
    string,
    text_format,
    texts_of,
)
from translate.service.state import Served, State, state_of

router = APIRouter()
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
                  "pt": "Portuguese", "ca": "Catalan", "nl": "Dutch"}  # fmt: skip
MEDIA = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".htm": "text/html; charset=utf-8", ".srt": "application/x-subrip; charset=utf-8",
         ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         ".odt": "application/vnd.oasis.opendocument.text"}  # fmt: skip
FRONTEND_TIMEOUT_MS = 500  # LibreTranslate's default: how long its page waits after typing before it asks


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


@router.get("/languages")
async def languages(request: Request):
    by_src: dict[str, set[str]] = {}
    for s in state_of(request).served.values():
        by_src.setdefault(s.translator.langs.src, set()).add(s.translator.langs.tgt)
    codes = sorted(set(by_src) | {t for ts in by_src.values() for t in ts})
    return [{"code": c, "name": language_name(c), "targets": sorted(by_src.get(c, ()))} for c in codes]


@router.post("/detect")
async def detect(request: Request):
    state = state_of(request)
    fields = await read_fields(request, state.config.max_body_bytes, state.config.read_timeout)
    char_limit = state.access.check(request, fields)
    texts, many = texts_of(fields, char_limit)
    detector = state.detector
    found = await asyncio.to_thread(detector.detect_all if many else lambda t: detector.detect(t[0]), texts)
    state.counters.count(200)
    return found


@router.post("/translate")
async def translate(request: Request):
    state = state_of(request)
    config = state.config
    fields = await read_fields(request, config.max_body_bytes, config.read_timeout)
    char_limit = state.access.check(request, fields)
    texts, many = texts_of(fields, char_limit)
    fmt = text_format(fields)
    alternatives = alternatives_of(fields, config.max_beam - 1)
    glossary = request_glossary(fields)
    source, target = string(fields, "source"), string(fields, "target")
    auto = source in (None, "", "auto")
    if auto:  # per text its language, and so its model
        detected = await asyncio.to_thread(lambda: [state.detector.detect(t)[0] for t in texts])
        models = [pick(state, _detected_source(state, d, target), target) for d in detected]
    else:
        models = [pick(state, source, target)] * len(texts)
    groups: dict[str, list[int]] = {}  # model name -> the indices of its texts
    alts: list = [None] * len(texts)  # per text: the best and its alternatives
    for i, s in enumerate(models):
        if any(ch.isalpha() for ch in texts[i]):
            groups.setdefault(s.name, []).append(i)
        else:  # nothing to translate (emoji, digits): the text itself, as LibreTranslate
            alts[i] = [texts[i]]
    answers = await asyncio.gather(*(
        _translate(state, state.served[name], [texts[i] for i in idx], fmt, alternatives, request, glossary)
        for name, idx in groups.items()
    ))  # fmt: skip
    for idx, found in zip(groups.values(), answers):
        for i, a in zip(idx, found):
            alts[i] = a
    body: dict = {"translatedText": [a[0] for a in alts] if many else alts[0][0]}
    if alternatives:
        body["alternatives"] = [a[1:] for a in alts] if many else alts[0][1:]
    if auto:
        body["detectedLanguage"] = detected if many else detected[0]
    state.counters.count(200)
    return body


def _detected_source(state: State, found: dict, target) -> str:
    """A detected language; with nothing detected (confidence 0), the first source served for target."""
    if found["confidence"] > 0:
        return found["language"]
    for s in state.served.values():
        if target in (None, "", s.translator.langs.tgt):
            return s.translator.langs.src
    return found["language"]


async def _translate(
    state: State, s: Served, texts: list[str], fmt: str, alternatives: int, request, glossary=None
):  # fmt: skip
    """Texts for one model -> per text [best, alternative 1, ...]; glossary: our extension (format text)."""
    n = alternatives + 1
    search = search_config(s.search, state.config.max_beam, nbest=n, beam_size=max(n, s.search.beam_size))
    if fmt == "html":
        if glossary is not None:
            raise ApiError(400, 'glossary works with format "text"')
        from translate.service.html import translate_html

        return await translate_html(state, s, texts, search, request)
    plans, hyps, _ = await run(state, s, texts, search, request, glossary=glossary)
    found = [s.translator.texts(p, h, n) for p, h in zip(plans, hyps)]  # per text, per line, n texts
    return [["\n".join(line[i] for line in lines) for i in range(n)] for lines in found]


@router.post("/translate_file")
async def translate_file(request: Request):
    state = state_of(request)
    config = state.config
    try:
        size = config.max_file_bytes + 65_536  # the file and a few fields
        fields = await read_fields(request, size, config.read_timeout)
    except ApiError as e:
        if e.status == 413:
            raise ApiError(400, f"file too big: the most is {config.max_file_bytes} bytes") from None
        raise
    upload = fields.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "missing field file (send the file as multipart/form-data)")
    data = await upload.read()
    name = upload.filename or ""
    ext = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if not data:
        raise ApiError(400, f"empty file {name!r}")
    if len(data) > config.max_file_bytes:
        raise ApiError(400, f"file too big: {len(data)} bytes, the most is {config.max_file_bytes}")
    if ext not in FORMATS:
        raise ApiError(400, unsupported(ext))
    state.access.check(request, fields, cost=max(1, len(data) // config.char_limit))
    source, target = string(fields, "source"), string(fields, "target")
    chosen: list[Served] = []

    async def model(texts: list[str]) -> Served:
        if not chosen:
            if source in (None, "", "auto"):
                found = await asyncio.to_thread(state.detector.detect, " ".join(texts)[:5000])
                chosen.append(pick(state, _detected_source(state, found[0], target), target))
            else:
                chosen.append(pick(state, source, target))
        return chosen[0]

    async def translated(texts: list[str], fmt: str) -> list[str]:
        s = await model(texts)
        out: list[str] = []
        for chunk in _chunks(texts, config.char_limit):  # each within the limits of one request
            out += [a[0] for a in await _translate(state, s, chunk, fmt, 0, request)]
        return out

    try:
        result = await translate_document(ext, data, lambda t: translated(t, "text"),
                                          lambda t: translated(t, "html"))  # fmt: skip
    except DocumentError as e:
        raise ApiError(400, str(e)) from None
    saved = await asyncio.to_thread(state.downloads.put, name, result)
    state.counters.count(200)
    return {"translatedFileUrl": str(request.url_for("download_file", name=saved))}


def _chunks(texts: list[str], chars: int):
    chunk: list[str] = []
    size = 0
    for t in texts:
        if chunk and size + len(t) > chars:
            yield chunk
            chunk, size = [], 0
        chunk.append(t)
        size += len(t)
    if chunk:
        yield chunk


@router.get("/download_file/{name}")
async def download_file(request: Request, name: str):
    found = state_of(request).downloads.get(name)
    if found is None:
        raise ApiError(404, "no such file: a translated file is kept for a limited time, under its own name")
    path, download = found
    return FileResponse(path, filename=download, media_type=MEDIA.get(PurePosixPath(download).suffix.lower()))


@router.post("/suggest")
async def suggest(request: Request):
    raise ApiError(403, "Suggestions are disabled on this server.")  # LibreTranslate's answer when off


@router.get("/frontend/settings")
async def frontend_settings(request: Request):
    state = state_of(request)
    config = state.config
    targets = sorted({s.translator.langs.tgt for s in state.served.values()})
    return {
        "charLimit": config.char_limit,
        "frontendTimeout": FRONTEND_TIMEOUT_MS,
        "apiKeys": bool(config.api_keys),
        "keyRequired": config.require_api_key,
        "suggestions": False,
        "filesTranslation": True,
        "supportedFilesFormat": list(FORMATS),
        "language": {"source": {"code": "auto", "name": "Auto Detect"},
                     "target": {"code": targets[0], "name": language_name(targets[0])}},
    }  # fmt: skip
