"""Our own endpoints: the web page, /v1/translate (n-best, scores, alignments, timing), /v1/models, /health
and /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse

from translate.service.alignment import alignment_json
from translate.service.dispatch import run
from translate.service.metrics import prometheus_text
from translate.service.requests import (
    REQUEST_FIELDS,
    ApiError,
    read_fields,
    request_glossary,
    request_search,
    texts_of,
)
from translate.service.state import state_of

router = APIRouter()
STATIC = files("translate.service") / "static"


@router.get("/", include_in_schema=False)
async def page():
    return FileResponse(str(STATIC / "index.html"))


@router.get("/health")
async def health(request: Request):
    state = state_of(request)
    return {"status": "draining" if state.counters.draining else "ok", "models": list(state.served)}


@router.get("/metrics")
async def metrics(request: Request):
    state = state_of(request)
    text = prometheus_text(state.served, state.counters)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


@router.get("/v1/models")
async def models(request: Request):
    return [{"name": s.name, "source": s.translator.langs.src, "target": s.translator.langs.tgt,
             "description": s.translator.summary(),
             "defaults": {"beam": s.search.beam_size, "nbest": s.search.nbest, "alpha": s.search.alpha}}
            for s in state_of(request).served.values()]  # fmt: skip


@router.post("/v1/translate")
async def translate(request: Request):
    state = state_of(request)
    config, served = state.config, state.served
    fields = await read_fields(request, config.max_body_bytes)
    texts, many = texts_of(fields, state.access.check(request, fields))  # keys and limits, as /translate
    name = fields.get("model") or (next(iter(served)) if len(served) == 1 else None)
    if name not in served:
        raise ApiError(400, f"unknown model {name!r}: this server has {', '.join(served)}")
    s = served[name]
    search = request_search(fields, s.search, config.max_beam)
    want_alignment = fields.get("alignment", False) in (True, "true", "1", 1)
    plans, hyps, timing = await run(state, s, texts, search, request, request_glossary(fields))
    tr = s.translator
    results = []
    for p, h in zip(plans, hyps):
        lines = tr.texts(p, h, search.nbest)  # per line, nbest texts
        nbest = [{"text": "\n".join(line[i] for line in lines),
                  "score": _score(sum(u[min(i, len(u) - 1)].score for u in h))}
                 for i in range(search.nbest)]  # fmt: skip
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
    state.counters.count(200)
    return {"model": name, "source": tr.langs.src, "target": tr.langs.tgt,
            "search": {"beam": search.beam_size, "nbest": search.nbest, "alpha": search.alpha,
                       **{f: getattr(search, f) for f in REQUEST_FIELDS}},
            "translations": results if many else results[0], "timing": timing}  # fmt: skip


def _score(x: float) -> float | None:
    """JSON has no NaN: greedy hypotheses (unranked) get null."""
    return None if x != x else round(x, 4)
