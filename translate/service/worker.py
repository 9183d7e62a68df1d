"""The model worker: one thread that owns a model and decodes for every client of the server.

Requests (a list of units, the search settings and a deadline) come in through submit(), from any thread;
each gets a concurrent.futures.Future with its hypotheses. How the thread schedules them:

  continuous  iteration-level scheduling: every unit joins a ContinuousDecoder (one per search setting) and
              leaves it at the step it finishes, so a new request starts at the next step (the default);
  static      batch what is queued: all waiting requests are decoded together by translate_ids, and
              requests that arrive meanwhile wait for the whole batch;
  sequential  one request at a time (translate_ids on its units).

A request with a glossary (constraints: target terms per unit) is decoded by translate_ids, constrained beam
search, under every scheduler: under continuous, one such job between two steps of the running batch.

Continuous batching needs our models' step interface. An engine without one (a CTranslate2 export, which
batches what it is given) is served with `engine=`: its translate_ids decodes, under static or sequential.

Back-pressure and clean-up: submit() raises QueueFull when the sentences waiting would exceed max_queue
(the server answers 503 with Retry-After); cancel() (client gone) and passed deadlines drop a request's
sentences from the running batch; stop() lets the running and queued work finish (SIGTERM drains).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial

from translate.search import Hypothesis, SearchConfig, SearchError, translate_ids
from translate.search.continuous import ContinuousDecoder
from translate.service.config import ServerConfig


class QueueFull(Exception):
    """More sentences waiting than the server's max_queue: come back in retry_after seconds."""

    def __init__(self, waiting: int, retry_after: int):
        super().__init__(f"the translation queue is full ({waiting} sentences waiting); retry later")
        self.retry_after = retry_after


class DeadlineExceeded(Exception):
    pass


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
        self._decoders: dict[SearchConfig, ContinuousDecoder] = {}
        self._ids = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="translate-worker", daemon=True)
        self._depth = 0  # sentences the thread holds that are not running yet
        self.active = 0  # sentences in the running batch
        self.kv_blocks = (0, 0)  # (in use, allocated) blocks of the paged pools
        self.kv_bytes = (0, 0)  # (allocated, used) bytes of the running self-attention caches
        self.tokens = 0  # target tokens generated since start
        self.sentences = 0  # sentences translated since start
        self._rate: deque[tuple[float, int]] = deque(maxlen=64)  # (time, tokens) samples for tokens/s

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
                raise QueueFull(waiting, retry_after=max(1, round(self._seconds_per_sentence() * waiting)))
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
        """Target tokens per second over the last few seconds of samples."""
        samples = list(self._rate)
        recent = [(t, n) for t, n in samples if t >= time.monotonic() - 10.0]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def _seconds_per_sentence(self) -> float:
        rate = self.tokens_per_second()
        return 0.1 if rate <= 0 else 30.0 / rate  # ~30 tokens a sentence

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
                except Exception as e:  # a request that cannot join fails alone, never the worker
                    self._drop(job, e)
            now = time.monotonic()
            for job in list(self._jobs.values()):
                if job.id in cancelled:
                    self._drop(job, None)
                elif job.deadline < now:
                    self._drop(job, DeadlineExceeded(f"not translated within {self.config.timeout:g} s"))
            try:
                self._work()
            except Exception as e:  # a broken batch fails its requests, never the worker
                for job in list(self._jobs.values()):
                    self._drop(job, e)
                self._decoders.clear()
            self._measure()

    def _accept(self, job: Job) -> None:
        self._jobs[job.id] = job
        if not job.units:
            self._finish(job)
        elif self.config.scheduler == "continuous" and job.constraints is None:
            decoder = self._decoders.get(job.search)
            if decoder is None:
                paged = self.config.kv_cache == "paged"
                size = self.config.block_size
                decoder = ContinuousDecoder(self.model, job.search, paged=paged, block_size=size)
                self._decoders[job.search] = decoder
            for i, ids in enumerate(job.units):
                decoder.add((job.id, i), ids)
        else:
            self._pending.append(job)

    def _work(self) -> None:
        if self.config.scheduler == "continuous":
            for decoder in list(self._decoders.values()):
                if decoder.busy:
                    finished = decoder.step()
                    for job_id, _ in decoder.admitted:
                        job = self._jobs.get(job_id)
                        if job is not None and job.started is None:
                            job.started = time.monotonic()
                    for (job_id, i), hyps in finished:
                        self._deliver(job_id, i, hyps)
            if self._pending:  # a job with a glossary: constrained beam search, between two steps
                self._decode([self._pending.popleft()])
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
            hyps = self._translate_ids([job.units[i] for job, i in units], search, constraints=constraints)
            for (job, i), h in zip(units, hyps):
                self._deliver(job.id, i, h)

    def _deliver(self, job_id: int, i: int, hyps: list[Hypothesis]) -> None:
        job = self._jobs.get(job_id)
        if job is None:  # dropped meanwhile
            return
        if not hyps:  # the search found no hypothesis with a finite score (NaN or infinite logits)
            self._drop(job, SearchError([i], "sentence"))
            return
        self.tokens += len(hyps[0].tokens) + 1
        self.sentences += 1
        job.results[i] = hyps
        job.left -= 1
        if job.left == 0:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        del self._jobs[job.id]
        if not job.future.done():
            job.future.set_result(job.results)

    def _drop(self, job: Job, error: Exception | None) -> None:
        """Take a job's sentences out of every queue and batch; fail its future with `error` (if any)."""
        self._jobs.pop(job.id, None)
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
        blocks = [d.kv_blocks() for d in decoders]
        self.kv_blocks = (sum(b[0] for b in blocks), sum(b[1] for b in blocks))
        memory = [d.kv_memory() for d in decoders]
        self.kv_bytes = (sum(m[0] for m in memory), sum(m[1] for m in memory))
        now = time.monotonic()
        if not self._rate or now - self._rate[-1][0] >= 0.25:
            self._rate.append((now, self.tokens))
