"""The HTTP API of `translate serve` (FastAPI): LibreTranslate's endpoints, our own /v1/translate, the web
page, health and Prometheus metrics. Every model has one Worker thread; handlers only plan, queue and wait.

  GET  /                 the web page (translate/service/static/, plain HTML/CSS/JS)
  POST /translate        LibreTranslate: {q: str | [str], source, target, format: "text", alternatives: N,
                         glossary: {source term: target term} (our extension)}
                         -> {translatedText: str | [str], alternatives?: [...], detectedLanguage? (auto)}
  GET  /languages        LibreTranslate: [{code, name, targets}] from the checkpoints' language pairs
  POST /v1/translate     {q, model?, beam?, nbest?, alpha?, strategy?, sampling_topk?, sampling_topp?,
                         sampling_temperature?, seed?, no_repeat_ngram_size?, repetition_penalty?,
                         repeat_guard?, glossary?, alignment?} -> per text the best translation,
                         the n-best with scores, per unit (sentence or part) its hypotheses and, on request,
                         the cross-attention alignment (source pieces x target pieces, and words); timing
  GET  /v1/models        the served models, their language pairs and decoding defaults
  GET  /health           {"status": "ok" | "draining", "models": [...]}
  GET  /metrics          Prometheus text: queue depth, active sequences, KV blocks, tokens/s, ...

Errors are JSON {"error": message} with 400 / 404 / 413 / 503 (+ Retry-After) / 504, never a traceback.
A client that disconnects while it waits has its sentences dropped from the running batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from translate.data.lines import text_lines
from translate.search import SearchConfig
from translate.service.alignment import alignment_json
from translate.service.config import ServerConfig
from translate.service.metrics import Counters, prometheus_text
from translate.service.requests import (
    REQUEST_FIELDS,
    ApiError,
    integer,
    read_fields,
    request_glossary,
    request_search,
    search_config,
    texts_of,
)
from translate.service.translator import Translator
from translate.service.worker import DeadlineExceeded, QueueFull, Worker

log = logging.getLogger(__name__)
STATIC = files("translate.service") / "static"
LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
                  "pt": "Portuguese", "ca": "Catalan", "nl": "Dutch"}  # fmt: skip


@dataclass
class Served:
    name: str
    translator: Translator
    worker: Worker
    search: SearchConfig  # the defaults a request may change


def create_app(served: dict[str, Served], config: ServerConfig) -> FastAPI:
    counters = Counters()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        counters.draining = True  # uvicorn has stopped accepting and finished the open requests
        for s in served.values():
            await asyncio.to_thread(s.worker.stop)

    app = FastAPI(title="translate", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        counters.count(e.status)
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        counters.count(e.status_code)
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=e.headers)

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception):
        log.exception("error while serving %s", request.url.path)
        counters.count(500)
        return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)

    def pick(source: str | None, target: str | None) -> Served:
        """The model for a LibreTranslate language pair ("auto" = the one source language served)."""
        sources = sorted({s.translator.langs.src for s in served.values()})
        if source in (None, "", "auto"):
            if len(sources) != 1:
                raise ApiError(400, f"source 'auto' needs exactly one source language; this server has "
                                    f"{', '.join(sources)}: name one")  # fmt: skip
            source = sources[0]
        for s in served.values():
            if s.translator.langs.src == source and target in (None, "", s.translator.langs.tgt):
                return s
        pairs = ", ".join(f"{s.translator.langs.src}-{s.translator.langs.tgt}" for s in served.values())
        raise ApiError(400, f"language pair {source}-{target or '?'} is not served (served: {pairs})")

    async def run(s: Served, texts: list[str], search: SearchConfig, request: Request, glossary=None):
        """Plan every text, queue its units on the model's worker, wait (dropping them if the client goes).
        glossary: its terms become the constraints of the units whose source holds them."""
        t0 = time.monotonic()
        if glossary is not None:
            if search.strategy != "beam" or search.greedy:
                raise ApiError(400, "glossary needs beam search (strategy beam, beam 2 or more)")
            if s.translator.model is None:
                raise ApiError(400, f"model {s.name} runs on CTranslate2, which has no lexically constrained "
                                    "search: a glossary needs a checkpoint model")  # fmt: skip
        plans = await asyncio.to_thread(lambda: [s.translator.plan(text_lines(t)) for t in texts])
        units = [u for p in plans for u in p.units]
        constraints = None if glossary is None else glossary.constraints(s.translator.tokenizer, units)
        if len(units) > config.max_queue:
            raise ApiError(413, f"the text has {len(units)} sentences, more than this server queues "
                                f"({config.max_queue}); send it in parts")  # fmt: skip
        try:
            job = s.worker.submit(units, search, config.timeout, constraints)
        except QueueFull as e:
            raise ApiError(503, str(e), {"Retry-After": str(e.retry_after)}) from None
        future = asyncio.wrap_future(job.future)
        gone = asyncio.ensure_future(disconnected(request))  # event-driven: no polling
        try:  # the worker ends the job at its deadline; the timeout here is a backstop
            await asyncio.wait({future, gone}, timeout=job.deadline + 1.0 - time.monotonic(),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            gone.cancel()
        if not future.done():
            s.worker.cancel(job)
            if gone.done() and not gone.cancelled():
                counters.disconnects += 1
                raise ApiError(499, "client closed the request")
            raise ApiError(504, f"not translated within {config.timeout:g} s")
        if future.cancelled():
            raise ApiError(504, f"not translated within {config.timeout:g} s")
        try:
            hyps = future.result()
        except DeadlineExceeded as e:
            raise ApiError(504, str(e)) from None
        done = time.monotonic()
        started = job.started or done
        timing = {
            "queue_ms": round(1000 * (started - job.submitted), 1),
            "decode_ms": round(1000 * (done - started), 1),
            "total_ms": round(1000 * (done - t0), 1),
        }
        out, i = [], 0
        for p in plans:
            out.append(hyps[i : i + len(p.units)])
            i += len(p.units)
        return plans, out, timing

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/health")
    async def health():
        return {"status": "draining" if counters.draining else "ok", "models": list(served)}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(prometheus_text(served, counters), media_type="text/plain; version=0.0.4")

    @app.get("/languages")
    async def languages():
        by_src: dict[str, set[str]] = {}
        for s in served.values():
            by_src.setdefault(s.translator.langs.src, set()).add(s.translator.langs.tgt)
        codes = sorted(set(by_src) | {t for ts in by_src.values() for t in ts})
        return [
            {"code": c, "name": LANGUAGE_NAMES.get(c, c), "targets": sorted(by_src.get(c, ()))} for c in codes
        ]

    @app.post("/translate")
    async def libre_translate(request: Request):
        fields = await read_fields(request, config.max_body_bytes)
        texts, many = texts_of(fields, config.char_limit)
        if fields.get("format", "text") != "text":
            raise ApiError(400, f'format {fields.get("format")!r} is not supported: only "text"')
        s = pick(fields.get("source"), fields.get("target"))
        alternatives = integer(fields, "alternatives", 0)
        if not 0 <= alternatives <= config.max_beam - 1:
            raise ApiError(
                400, f"alternatives must be between 0 and {config.max_beam - 1}, got {alternatives}"
            )
        n = alternatives + 1
        search = search_config(s.search, config.max_beam, nbest=n, beam_size=max(n, s.search.beam_size))
        plans, hyps, _ = await run(s, texts, search, request, request_glossary(fields))
        found = [s.translator.texts(p, h, n) for p, h in zip(plans, hyps)]  # per text, per line, n texts
        alts = [["\n".join(line[i] for line in lines) for i in range(n)] for lines in found]  # per text
        body: dict = {"translatedText": [a[0] for a in alts] if many else alts[0][0]}
        if alternatives:
            body["alternatives"] = [a[1:] for a in alts] if many else alts[0][1:]
        if fields.get("source") in (None, "", "auto"):
            body["detectedLanguage"] = {"confidence": 100.0, "language": s.translator.langs.src}
        counters.count(200)
        return body

    @app.get("/v1/models")
    async def models():
        return [{"name": s.name, "source": s.translator.langs.src, "target": s.translator.langs.tgt,
                 "description": s.translator.summary(),
                 "defaults": {"beam": s.search.beam_size, "nbest": s.search.nbest, "alpha": s.search.alpha}}
                for s in served.values()]  # fmt: skip

    @app.post("/v1/translate")
    async def translate(request: Request):
        fields = await read_fields(request, config.max_body_bytes)
        texts, many = texts_of(fields, config.char_limit)
        name = fields.get("model") or (next(iter(served)) if len(served) == 1 else None)
        if name not in served:
            raise ApiError(400, f"unknown model {name!r}: this server has {', '.join(served)}")
        s = served[name]
        search = request_search(fields, s.search, config.max_beam)
        want_alignment = fields.get("alignment", False) in (True, "true", "1", 1)
        plans, hyps, timing = await run(s, texts, search, request, request_glossary(fields))
        tr = s.translator
        results = []
        for p, h in zip(plans, hyps):
            lines = tr.texts(p, h, search.nbest)  # per line, nbest texts
            nbest = [
                {
                    "text": "\n".join(line[i] for line in lines),
                    "score": _score(sum(u[min(i, len(u) - 1)].score for u in h)),
                }
                for i in range(search.nbest)
            ]
            units = []
            for ids, unit_hyps in zip(p.units, h):
                unit = {"source": tr.tokenizer.decode(ids, "src"), "length": len(ids), "hypotheses": []}
                for hyp in unit_hyps:
                    entry = {
                        "text": tr.detokenize(hyp),
                        "score": _score(hyp.score),
                        "logprob": _score(hyp.logprob),
                        "length": len(hyp.tokens),  # target subwords, EOS excluded
                    }
                    if want_alignment:
                        entry["alignment"] = await asyncio.to_thread(alignment_json, tr, ids, hyp.tokens)
                    unit["hypotheses"].append(entry)
                units.append(unit)
            results.append({"text": nbest[0]["text"], "nbest": nbest, "units": units})
        counters.count(200)
        return {"model": name, "source": tr.langs.src, "target": tr.langs.tgt,
                "search": {"beam": search.beam_size, "nbest": search.nbest, "alpha": search.alpha,
                           **{f: getattr(search, f) for f in REQUEST_FIELDS}},
                "translations": results if many else results[0], "timing": timing}  # fmt: skip

    return app


async def disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _score(x: float) -> float | None:
    """JSON has no NaN: greedy hypotheses (unranked) get null."""
    return None if x != x else round(x, 4)
