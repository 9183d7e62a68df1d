"""Our own endpoints: the web page, /v1/translate (n-best, scores, alignments, timing), /v1/models, /health
and /metrics (Prometheus text)."""

from __future__ import annotations

import time
from importlib.resources import files

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse

from translate.service.alignment import AlignmentStopped, alignment_cells, alignments
from translate.service.dispatch import run, work
from translate.service.metrics import prometheus_text
from translate.service.requests import (
    REQUEST_FIELDS,
    ApiError,
    flag,
    read_fields,
    request_glossary,
    request_search,
    string,
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
    t0 = time.monotonic()
    fields = await read_fields(request, config.max_body_bytes, config.read_timeout)
    texts, many = texts_of(fields, state.access.check(request, fields))  # keys and limits, as /translate
    name = string(fields, "model") or (next(iter(served)) if len(served) == 1 else None)
    if name not in served:
        raise ApiError(400, f"unknown model {name!r}: this server has {', '.join(served)}")
    s = served[name]
    search = request_search(fields, s.search, config.max_beam)
    want_alignment = flag(fields, "alignment")
    tr = s.translator

    def bounded(units: list[list[int]]) -> None:
        cells, longest = alignment_cells(units, search, tr.model)
        if cells > config.max_alignment_cells:
            raise ApiError(413, f"alignment of {len(units)} units x nbest {search.nbest} x up to "
                                f"{longest + 1} target pieces x their source pieces = up to {cells} weights, "
                                f"over this server's limit of {config.max_alignment_cells}: ask for fewer "
                                "alternatives, less text, or no alignment")  # fmt: skip

    plans, hyps, timing = await run(state, s, texts, search, request, bounded if want_alignment else None,
                                    glossary=request_glossary(fields))  # fmt: skip
    aligned = None
    if want_alignment:
        every_unit, every_hyps = [u for p in plans for u in p.units], [u for h in hyps for u in h]
        try:
            aligned = await work(request, lambda stop: alignments(tr, every_unit, every_hyps, stop),
                                 t0 + config.timeout, config.timeout)  # fmt: skip
        except AlignmentStopped:  # (the thread saw the stop first: the answer is the same)
            raise ApiError(504, f"not translated within {config.timeout:g} s") from None
    k = 0  # the unit's index over all texts
    results = []
    for p, h in zip(plans, hyps):
        lines = tr.texts(p, h, search.nbest)  # per line, nbest texts
        nbest = [{"text": "\n".join(line[i] for line in lines),
                  "score": _score(sum(u[min(i, len(u) - 1)].score for u in h))}
                 for i in range(search.nbest)]  # fmt: skip
        units = []
        for ids, unit_hyps in zip(p.units, h):
            unit = {"source": tr.tokenizer.decode(ids, "src"), "length": len(ids), "hypotheses": []}
            for j, hyp in enumerate(unit_hyps):
                entry = {
                    "text": tr.detokenize(hyp),
                    "score": _score(hyp.score),
                    "logprob": _score(hyp.logprob),
                    "length": len(hyp.tokens),  # target subwords, EOS excluded
                }
                if aligned is not None:
                    entry["alignment"] = aligned[k][j]
                unit["hypotheses"].append(entry)
            units.append(unit)
            k += 1
        results.append({"text": nbest[0]["text"], "nbest": nbest, "units": units})
    state.counters.count(200)
    return {"model": name, "source": tr.langs.src, "target": tr.langs.tgt,
            "search": {"beam": search.beam_size, "nbest": search.nbest, "alpha": search.alpha,
                       **{f: getattr(search, f) for f in REQUEST_FIELDS}},
            "translations": results if many else results[0], "timing": timing}  # fmt: skip


def _score(x: float) -> float | None:
    """JSON has no NaN: greedy hypotheses (unranked) get null."""
    return None if x != x else round(x, 4)
