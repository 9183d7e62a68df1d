"""From checked fields to hypotheses: pick the model for a language pair, plan the texts into units, queue
them on the model's worker and wait, dropping them if the client goes away. Every translating endpoint
calls run(); the worker's exceptions become ApiErrors here (503 queue full, 504 deadline, 499 gone, 400 a
request the model cannot take, 500 with the reason when decoding it failed). work() runs a request's other
CPU work (its alignments) in a thread under the same deadline and disconnect watch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from starlette.requests import Request

from translate.data.lines import text_lines
from translate.search import Hypothesis, SearchConfig
from translate.search.glossary import Glossary
from translate.service.requests import ApiError
from translate.service.segment import Plan
from translate.service.state import Served, State, state_of
from translate.service.worker import DeadlineExceeded, DecodingFailed, QueueFull, RequestRejected


def pick(state: State, source, target) -> Served:
    """The model for a LibreTranslate language pair (a missing target: the first model for the source)."""
    served = state.served
    for s in served.values():
        if s.translator.langs.src == source and target in (None, "", s.translator.langs.tgt):
            return s
    pairs = ", ".join(f"{s.translator.langs.src}-{s.translator.langs.tgt}" for s in served.values())
    raise ApiError(400, f"language pair {source}-{target or '?'} is not served (served: {pairs})")


async def run(
    state: State, s: Served, texts: list[str], search: SearchConfig, request: Request,
    check: Callable[[list[list[int]]], None] | None = None, glossary: Glossary | None = None,
) -> tuple[list[Plan], list[list[list[Hypothesis]]], dict]:  # fmt: skip
    """Plan every text, queue its units on the model's worker, wait (dropping them if the client goes).
    `check(units)` may refuse the request (an ApiError) after planning, before anything is queued.
    glossary: its terms become the constraints of the units whose source holds them.

    -> (per text its Plan, per text per unit its hypotheses, timing in ms)."""
    config, t0 = state.config, time.monotonic()
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
    if check is not None:
        check(units)
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
            state.counters.disconnects += 1
            raise ApiError(499, "client closed the request")
        raise ApiError(504, f"not translated within {config.timeout:g} s")
    if future.cancelled():
        raise ApiError(504, f"not translated within {config.timeout:g} s")
    try:
        hyps = future.result()
    except DeadlineExceeded as e:
        raise ApiError(504, str(e)) from None
    except RequestRejected as e:
        raise ApiError(400, str(e)) from None
    except DecodingFailed as e:  # logged with its traceback by the worker
        raise ApiError(500, str(e)) from None
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


async def work(request: Request, fn: Callable[[threading.Event], object], deadline: float, timeout: float):
    """fn(stop) in a thread; `stop` is set when the client leaves (499) or `deadline` passes (504), and fn
    is expected to return soon after (raising anything: its result is dropped; counters.abandoned_work counts
    it once the thread has ended)."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(fn, stop))
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({task, gone}, timeout=max(0.0, deadline - time.monotonic()),
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    stop.set()
    counters = state_of(request).counters

    def ended(t: asyncio.Future) -> None:  # the thread ended at its next check: counted, nothing to raise
        if not t.cancelled():
            t.exception()
        counters.abandoned_work += 1

    task.add_done_callback(ended)
    if gone.done() and not gone.cancelled():
        counters.disconnects += 1
        raise ApiError(499, "client closed the request")
    raise ApiError(504, f"not translated within {timeout:g} s")


async def disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
