"""The model worker: one thread that owns a model and decodes for every client of the server.

Requests (a list of units, the search settings and a deadline) come in through submit(), from any thread;
each gets a concurrent.futures.Future with its hypotheses. How the thread schedules them:

  continuous  iteration-level scheduling: every unit joins a ContinuousDecoder and leaves it at the step it
              finishes, so a new request starts at the next step (the default). Requests share a decoder
              when their settings have the same shape (beam size, nbest, token budget; alpha and length
              limits are per sentence), every decoder keeps its paged cache in the worker's one BlockPool,
              a decoder with nothing left to do is dropped, and the pool gives memory back after a burst
              (BlockPool.trim): memory is bounded by the work in flight, not by the settings ever seen;
  static      batch what is queued: all waiting requests are decoded together by translate_ids, and
              requests that arrive meanwhile wait for the whole batch;
  sequential  one request at a time (translate_ids on its units).

A request with a glossary (constraints: target terms per unit) is decoded by translate_ids, constrained beam
search, under every scheduler: under continuous, one such job between two steps of the running batch.

Continuous batching needs our models' step interface. An engine without one (a CTranslate2 export, which
batches what it is given) is served with `engine=`: its translate_ids decodes, under static or sequential.

Back-pressure and clean-up: submit() raises QueueFull when the sentences waiting would exceed max_queue
(the server answers 503 with Retry-After, estimated from the backlog and the measured sentences/s); cancel()
(client gone) and passed deadlines drop a request's sentences from the running batch; stop() lets the
running and queued work finish (SIGTERM drains).

Failures stay with the request that meets them: a request that cannot join (RequestRejected: its source does
not fit the model; DecodingFailed: encoding it raised) fails alone, and the running batch goes on. A decoding
step that raises fails nobody at once: every request that had
sentences in that decoder is decoded again from its start, each in a decoder of its own (the same answers:
decoding a sentence does not depend on what shares its batch); the one that fails again alone fails with
DecodingFailed (the server's fault: a 500 with the reason), the others get their answers.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial

from translate.search import Hypothesis, SearchConfig, SearchError, translate_ids
from translate.search.continuous import ContinuousDecoder, shape_of
from translate.search.stepper import sequence_limit
from translate.service.config import ServerConfig

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More sentences waiting than the server's max_queue: come back in retry_after seconds."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(f"the translation queue is full ({waiting} sentences waiting); retry later")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    pass


class RequestRejected(ValueError):
    """The request cannot be decoded as asked (e.g. a unit longer than the model's positions): a 400."""


class DecodingFailed(RuntimeError):
    """Decoding this request raised, alone in its batch: a bug or a broken model, not the client's (a 500)."""

    def __init__(self, error: BaseException):
        super().__init__(f"decoding failed ({type(error).__name__}: {error})")


@dataclass
class Job:
    id: int
    units: list[list[int]]
    search: SearchConfig
    deadline: float  # time.monotonic() by which it must be done
    constraints: list[list[list[int]]] | None = None  # per unit a glossary's target terms (constrained beam)
    future: Future = field(default_factory=Future)
    results: list[list[Hypothesis] | None] = field(default_factory=list)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None  # when its first unit was given to the model

    def __post_init__(self) -> None:
        self.results = [None] * len(self.units)
        self.left = len(self.units)


class Worker:
    def __init__(self, model, config: ServerConfig, *, engine=None):
        """model: a Seq2Seq (any scheduler); or model=None and engine: a translate.engines engine whose
        translate_ids decodes (static or sequential)."""
        if model is None and (engine is None or config.scheduler == "continuous"):
            raise ValueError("scheduler=continuous needs a model with the step interface; "
                             "an engine is served static or sequential")  # fmt: skip
        self.model, self.config = model, config
        self._translate_ids = engine.translate_ids if engine is not None else partial(translate_ids, model)
        self._cond = threading.Condition()
        self._inbox: list[Job] = []  # submitted, not yet seen by the thread
        self._cancelled: set[int] = set()
        self._jobs: dict[int, Job] = {}  # seen by the thread, not finished
        self._pending: deque[Job] = deque()  # static / sequential: jobs waiting for the model
        # continuous: decoders by shape (shape_of), or ("alone", job id) for a job decoded again on its own
        self._decoders: dict[tuple, ContinuousDecoder] = {}
        self._where: dict[int, tuple] = {}  # job id -> the key of the decoder its sentences are in
        self._pool = None  # the one BlockPool of the paged cache (made on first use)
        self._no_pool = False  # paged, but the model keeps no self-attention cache (RNNs)
        self._ids = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="translate-worker", daemon=True)
        self._depth = 0  # sentences the thread holds that are not running yet
        self.active = 0  # sentences in the running batch
        self.kv_blocks = (0, 0)  # (in use, allocated) blocks of the paged pools
        self.kv_bytes = (0, 0)  # (allocated, used) bytes of the running self-attention caches
        self.tokens = 0  # target tokens generated since start
        self.sentences = 0  # sentences translated since start
        self._rate: deque[tuple[float, int, int]] = deque(maxlen=64)  # (time, tokens, sentences) samples

    # ------------------------------------------------------------------------------- client side

    def start(self) -> Worker:
        self._thread.start()
        return self

    def submit(
        self, units: list[list[int]], search: SearchConfig, timeout: float,
        constraints: list[list[list[int]]] | None = None,
    ) -> Job:  # fmt: skip
        """Queue one request; raises QueueFull when it would not fit the queue. constraints: per unit the
        target terms its translation must hold (decoded by translate_ids, whatever the scheduler)."""
        with self._cond:
            if self._stopping:
                raise QueueFull(self.queue_depth, retry_after=5)
            waiting = self.queue_depth
            if waiting + len(units) > self.config.max_queue:
                raise QueueFull(waiting, retry_after=self.retry_after(waiting + self.active))
            if constraints is not None and not any(constraints):
                constraints = None
            job = Job(next(self._ids), units, search, time.monotonic() + timeout, constraints)
            self._inbox.append(job)
            self._cond.notify()
        return job

    def cancel(self, job: Job) -> None:
        """The client went away: drop its sentences (waiting or running)."""
        with self._cond:
            self._cancelled.add(job.id)
            self._cond.notify()
        job.future.cancel()

    def stop(self, timeout: float | None = None) -> None:
        """Finish what is queued and running, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    @property
    def queue_depth(self) -> int:
        """Sentences waiting for the model: submitted, not yet in a running batch."""
        return self._depth + sum(len(j.units) for j in list(self._inbox))

    def tokens_per_second(self) -> float:
        """Target tokens per second over the last 10 seconds of samples."""
        return self._per_second(1)

    def sentences_per_second(self) -> float:
        """Sentences translated per second over the last 10 seconds of samples."""
        return self._per_second(2)

    def _per_second(self, column: int) -> float:
        recent = [r for r in list(self._rate) if r[0] >= time.monotonic() - 10.0]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][column] - recent[0][column]) / (recent[-1][0] - recent[0][0])

    def retry_after(self, backlog: int) -> int:
        """Seconds until `backlog` sentences (waiting and running) are likely done, at the measured rate
        (1 s a sentence before anything was measured), at least 1 and at most the request timeout."""
        rate = self.sentences_per_second()
        seconds = backlog / rate if rate > 0 else float(backlog)
        return int(min(max(1.0, math.ceil(seconds)), math.ceil(self.config.timeout)))

    @property
    def decoders(self) -> int:
        """ContinuousDecoders held (each with work: idle ones are dropped)."""
        return len(self._decoders)

    @property
    def pool(self):
        """The paged cache's BlockPool (None before the first paged request, or without one)."""
        return self._pool

    # ------------------------------------------------------------------------------- the thread

    def _busy(self) -> bool:
        return bool(self._jobs)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._inbox or self._cancelled or self._busy() or self._stopping):
                    self._cond.wait()
                if self._stopping and not (self._inbox or self._busy()):
                    return
                inbox, self._inbox = self._inbox, []
                cancelled, self._cancelled = self._cancelled, set()
            for job in inbox:
                try:
                    self._accept(job)
                except RequestRejected as e:  # a request that cannot join fails alone, never the worker
                    self._drop(job, e)
                except Exception as e:
                    log.exception("accepting request %d", job.id)
                    self._drop(job, DecodingFailed(e))
            now = time.monotonic()
            for job in list(self._jobs.values()):
                if job.id in cancelled:
                    self._drop(job, None)
                elif job.deadline < now:
                    self._drop(job, DeadlineExceeded(f"not translated within {self.config.timeout:g} s"))
            try:
                self._work()
            except Exception as e:  # a bug outside any one decoder: fail what is running, keep the worker
                log.exception("model worker")
                for job in list(self._jobs.values()):
                    self._drop(job, DecodingFailed(e))
                self._decoders.clear()
            self._measure()

    def _accept(self, job: Job) -> None:
        self._jobs[job.id] = job
        if not job.units:
            self._finish(job)
        elif self.config.scheduler == "continuous" and job.constraints is None:
            self._add(job, shape_of(job.search))
        else:
            self._pending.append(job)

    def _add(self, job: Job, key: tuple) -> None:
        """Queue the job's undelivered units on decoder `key` (made if needed)."""
        limit = sequence_limit(self.model)
        for ids in job.units:  # before any unit joins, so a rejected request leaves nothing behind
            if limit is not None and len(ids) > limit:
                raise RequestRejected(f"a sentence of {len(ids)} subwords is longer than the model's {limit}")
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = ContinuousDecoder(self.model, job.search, pool=self._shared_pool())
            self._decoders[key] = decoder
        self._where[job.id] = key
        for i, ids in enumerate(job.units):
            if job.results[i] is None:
                decoder.add((job.id, i), ids, job.search)

    def _shared_pool(self):
        """The worker's one BlockPool for the paged cache (None: contiguous cache, or a model without one)."""
        if self._pool is None and self.config.kv_cache == "paged" and not self._no_pool:
            new_pool = getattr(self.model, "new_block_pool", None)  # models with a self-attention KV cache
            if new_pool is None:
                self._no_pool = True
            else:
                self._pool = new_pool(self.config.block_size)
        return self._pool

    def _work(self) -> None:
        if self.config.scheduler == "continuous":
            for key, decoder in list(self._decoders.items()):
                if not decoder.busy:
                    continue
                try:
                    finished = decoder.step()
                except Exception as e:
                    self._isolate(key, decoder, e)
                    continue
                for job_id, _ in decoder.admitted:
                    job = self._jobs.get(job_id)
                    if job is not None and job.started is None:
                        job.started = time.monotonic()
                for (job_id, _), error in decoder.failed:  # could not join: that request fails alone
                    job = self._jobs.get(job_id)
                    if job is not None:
                        log.error("request %d: a sentence could not be encoded", job_id, exc_info=error)
                        self._drop(job, DecodingFailed(error))
                for (job_id, i), hyps in finished:
                    self._deliver(job_id, i, hyps)
            for key in [k for k, d in self._decoders.items() if not d.busy]:  # idle decoders go
                del self._decoders[key]
            if self._pool is not None:
                self._pool.trim()
            if self._pending:  # a job with a glossary: constrained beam search, between two steps
                job = self._pending.popleft()
                job.started = time.monotonic()
                self._alone_static(job)
            return
        if not self._pending:
            return
        batch = [self._pending.popleft()] if self.config.scheduler == "sequential" else list(self._pending)
        if self.config.scheduler == "static":
            self._pending.clear()
        self._decode(batch)

    def _decode(self, batch: list[Job]) -> None:
        """Jobs decoded together by translate_ids, one call per search setting (constraints carried)."""
        by_search: dict[SearchConfig, list[Job]] = {}
        for job in batch:
            job.started = time.monotonic()
            by_search.setdefault(job.search, []).append(job)
        for search, jobs in by_search.items():
            units = [(job, i) for job in jobs for i in range(len(job.units))]
            self.active = len(units)
            constraints = None
            if any(job.constraints for job in jobs):
                constraints = [job.constraints[i] if job.constraints else [] for job, i in units]
            try:
                ids = [job.units[i] for job, i in units]
                hyps = self._translate_ids(ids, search, constraints=constraints)
            except Exception as e:  # decode each job alone: the one that fails again fails alone
                if len(jobs) == 1:
                    log.exception("decoding request %d", jobs[0].id)
                    self._drop(jobs[0], DecodingFailed(e))
                for job in jobs if len(jobs) > 1 else []:
                    self._alone_static(job)
                continue
            for (job, i), h in zip(units, hyps):
                self._deliver(job.id, i, h)

    def _alone_static(self, job: Job) -> None:
        try:
            hyps = self._translate_ids(job.units, job.search, constraints=job.constraints)
        except Exception as e:
            log.exception("decoding request %d alone", job.id)
            self._drop(job, DecodingFailed(e))
            return
        for i, h in enumerate(hyps):
            self._deliver(job.id, i, h)

    def _isolate(self, key: tuple, decoder: ContinuousDecoder, error: Exception) -> None:
        """A step of `decoder` raised. Requests decoded alone already (key ("alone", id)) fail with
        DecodingFailed; the others start again, each in a decoder of its own."""
        jobs = [self._jobs[j] for j, k in self._where.items() if k == key and j in self._jobs]
        del self._decoders[key]
        try:  # give the cache blocks back (the state may be broken: then they stay taken)
            decoder.cancel(list(decoder.keys))
        except Exception:
            log.warning("could not release the cache of a failed decoder", exc_info=True)
        if key[0] == "alone":
            log.error("decoding request %s failed", key[1], exc_info=error)
            for job in jobs:
                self._drop(job, DecodingFailed(error))
            return
        log.warning("a decoding step failed (%s: %s); decoding its %d requests again, each alone",
                    type(error).__name__, error, len(jobs))  # fmt: skip
        for job in jobs:
            self._add(job, ("alone", job.id))

    def _deliver(self, job_id: int, i: int, hyps: list[Hypothesis]) -> None:
        job = self._jobs.get(job_id)
        if job is None:  # dropped meanwhile
            return
        if not hyps:  # the search found no hypothesis with a finite score (NaN or infinite logits)
            self._drop(job, DecodingFailed(SearchError([i], "sentence")))
            return
        self.tokens += len(hyps[0].tokens) + 1
        self.sentences += 1
        job.results[i] = hyps
        job.left -= 1
        if job.left == 0:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        del self._jobs[job.id]
        self._where.pop(job.id, None)
        if not job.future.done():
            job.future.set_result(job.results)

    def _drop(self, job: Job, error: Exception | None) -> None:
        """Take a job's sentences out of every queue and batch; fail its future with `error` (if any)."""
        self._jobs.pop(job.id, None)
        self._where.pop(job.id, None)
        keys = [(job.id, i) for i in range(len(job.units))]
        for decoder in self._decoders.values():
            decoder.cancel(keys)
        if job in self._pending:
            self._pending.remove(job)
        if error is not None and not job.future.done():
            job.future.set_exception(error)

    def _measure(self) -> None:
        decoders = self._decoders.values()
        if self.config.scheduler == "continuous":
            self._depth = sum(len(d.waiting) for d in decoders) + sum(len(j.units) for j in self._pending)
            self.active = sum(d.running for d in decoders)
        else:
            self._depth = sum(len(j.units) for j in self._pending)
            self.active = 0
        pool = self._pool
        self.kv_blocks = (pool.in_use, pool.num_blocks) if pool is not None else (0, 0)
        memory = [d.kv_memory() for d in decoders]
        self.kv_bytes = (sum(m[0] for m in memory), sum(m[1] for m in memory))
        now = time.monotonic()
        if not self._rate or now - self._rate[-1][0] >= 0.25:
            self._rate.append((now, self.tokens, self.sentences))
