"""The model worker: every scheduler gives the offline translations; deadlines and cancellations drop work."""

import time

import pytest
import torch

from tests.service.live import Endless
from translate.models.transformer import Transformer
from translate.search import SearchConfig, translate_ids
from translate.search.config import REPETITION_OFF
from translate.service import ServerConfig
from translate.service.worker import DeadlineExceeded, DecodingFailed, QueueFull, RequestRejected, Worker

pytestmark = pytest.mark.usefixtures("one_thread")
SEARCH = SearchConfig(beam_size=2, nbest=2, max_len_a=0.0, max_len_b=5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(25, 25, d_model=16, ffn_dim=16, num_heads=2, encoder_layers=1, decoder_layers=1).eval()


def units(n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, 25, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]  # fmt: skip


SCHEDULES = [("continuous", "contiguous"), ("continuous", "paged"), ("static", "contiguous"),
             ("sequential", "contiguous")]  # fmt: skip


@pytest.mark.parametrize("scheduler,kv", SCHEDULES)
def test_every_scheduler_answers_each_job_with_the_offline_translations(model, scheduler, kv):
    worker = Worker(model, ServerConfig(scheduler=scheduler, kv_cache=kv, block_size=4)).start()
    try:
        jobs = [worker.submit(units(3, seed), SEARCH, timeout=30) for seed in range(5)]
        for seed, job in enumerate(jobs):
            got = job.future.result(30)
            want = translate_ids(model, units(3, seed), SEARCH)
            assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]
            assert job.started is not None and job.submitted <= job.started
        best = [nb[0] for s in range(5) for nb in translate_ids(model, units(3, s), SEARCH)]
        assert worker.sentences == 15 and worker.tokens == sum(len(h.tokens) + 1 for h in best)  # EOS counts
    finally:
        worker.stop(10)
    assert worker.kv_blocks[0] == 0 and worker.active == 0 and worker.queue_depth == 0


def test_deadline_cancel_and_queue_limit(model):
    slow = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=3000, **REPETITION_OFF)  # loops to its limit
    worker = Worker(Endless(model), ServerConfig(max_queue=4, timeout=0.3)).start()
    try:
        late = worker.submit(units(1, 0), slow, timeout=0.3)
        with pytest.raises(DeadlineExceeded):
            late.future.result(30)
        gone = worker.submit(units(2, 1), slow, timeout=30)
        deadline = time.monotonic() + 10
        while worker.active < 2:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pytest.raises(QueueFull):
            worker.submit(units(5, 2), SEARCH, timeout=30)
        worker.cancel(gone)
        while worker.active:
            assert time.monotonic() < deadline, "cancelled sentences stayed in the batch"
            time.sleep(0.005)
        assert gone.future.cancelled() and worker.sentences == 0
        assert len(worker.submit(units(2, 3), SEARCH, timeout=30).future.result(30)) == 2
    finally:
        worker.stop(10)


@pytest.mark.parametrize("kv", ["contiguous", "paged"])
def test_a_dynamic_int8_model_is_served_continuously(model, kv):
    from translate.models.quantize import quantize_dynamic_int8

    q = quantize_dynamic_int8(model)
    worker = Worker(q, ServerConfig(kv_cache=kv, block_size=4)).start()
    try:
        got = worker.submit(units(4, 7), SEARCH, timeout=30).future.result(30)
    finally:
        worker.stop(10)
    want = translate_ids(q, units(4, 7), SEARCH)
    assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]


class NoPool:
    """A model whose paged cache cannot be built: the request fails when it joins the worker."""

    def __init__(self, model):
        self.model = model

    def __getattr__(self, name: str):
        return getattr(self.model, name)

    def new_block_pool(self, *args, **kwargs):
        raise RuntimeError("no pool for you")


def test_a_request_that_cannot_join_fails_instead_of_hanging(model):
    worker = Worker(NoPool(model), ServerConfig(kv_cache="paged", block_size=4)).start()
    try:
        for seed in range(2):  # the worker is still there for the next request
            with pytest.raises(RuntimeError, match="no pool for you"):
                worker.submit(units(2, seed), SEARCH, timeout=30).future.result(30)
        assert worker._thread.is_alive() and worker.queue_depth == 0
    finally:
        worker.stop(10)


@pytest.mark.parametrize("kv", ["contiguous", "paged"])
def test_a_poisoned_request_fails_alone_and_the_batch_beside_it_goes_on(model, kv):
    """A request whose decoding raises (a token id the model has no embedding for: IndexError when it joins
    the running batch) fails with DecodingFailed; the requests running beside it get exactly the answers they
    get alone, and the worker goes on."""
    endless = Endless(model)  # every sentence runs to its limit: the good ones are still running
    long = SearchConfig(beam_size=2, nbest=2, max_len_a=0.0, max_len_b=30, **REPETITION_OFF)  # to the limit
    other = SearchConfig(beam_size=2, nbest=2, alpha=1.5, max_len_a=0.0, max_len_b=20, **REPETITION_OFF)
    worker = Worker(endless, ServerConfig(kv_cache=kv, block_size=4)).start()
    try:
        good = [worker.submit(units(2, seed), long if seed % 2 else other, timeout=30) for seed in range(6)]
        deadline = time.monotonic() + 10
        while worker.active < 12:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        poisoned = worker.submit([[5, 6], [7, 25]], other, timeout=30)  # 25: out of the vocabulary
        with pytest.raises(DecodingFailed, match="IndexError"):
            poisoned.future.result(30)
        for seed, job in enumerate(good):
            search = long if seed % 2 else other
            want = translate_ids(endless, units(2, seed), search)
            got = job.future.result(30)
            assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]
            scores = [h.score for nb in want for h in nb]
            assert [h.score for nb in got for h in nb] == pytest.approx(scores, rel=1e-4)
        after = worker.submit(units(3, 9), SEARCH, timeout=30).future.result(30)
        assert [[h.tokens for h in nb] for nb in after] == [
            [h.tokens for h in nb] for nb in translate_ids(endless, units(3, 9), SEARCH)
        ]
    finally:
        worker.stop(10)
    assert worker.kv_blocks[0] == 0


def test_a_sentence_longer_than_the_model_is_rejected_alone(model):
    learned = Transformer(25, 25, d_model=16, ffn_dim=16, num_heads=2, encoder_layers=1, decoder_layers=1,
                          positions="learned", max_positions=8).eval()  # fmt: skip
    worker = Worker(learned, ServerConfig(block_size=4)).start()
    try:
        with pytest.raises(RequestRejected, match="longer than the model's 7"):
            worker.submit([[5] * 3, [6] * 8], SEARCH, timeout=30).future.result(30)
        assert len(worker.submit([[5] * 7], SEARCH, timeout=30).future.result(30)) == 1
    finally:
        worker.stop(10)


def test_memory_is_bounded_by_the_work_in_flight_not_by_the_settings_seen(model):
    """K requests with K distinct search settings (4 shapes): the worker holds at most one decoder per shape
    while they run, none afterwards, and one pool that gave back its burst."""
    worker = Worker(model, ServerConfig(kv_cache="paged", block_size=4, max_queue=1000)).start()
    settings = [SearchConfig(beam_size=1 + k % 4, nbest=1, alpha=0.05 * k, max_len_a=0.5 + 0.01 * k,
                             max_len_b=5) for k in range(40)]  # fmt: skip
    held = []
    try:
        jobs = [worker.submit(units(6, k), s, timeout=60) for k, s in enumerate(settings)]
        while not all(j.future.done() for j in jobs):
            held.append(worker.decoders)
            time.sleep(0.001)
        for k, job in enumerate(jobs):
            want = translate_ids(model, units(6, k), settings[k])
            got = job.future.result()
            assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]
        deadline = time.monotonic() + 10
        while worker.decoders:
            assert time.monotonic() < deadline, "idle decoders were kept"
            time.sleep(0.005)
        pool = worker.pool
        assert max(held) <= 4 and pool.peak_in_use > 2 * pool.initial  # the burst grew the pool
        assert pool.in_use == 0 and pool.num_blocks <= 2 * pool.initial  # and it gave the memory back
    finally:
        worker.stop(10)


class FailsOnce(Endless):
    """Its 5th decoding step raises (a fault of the server, not of any request)."""

    calls = 0

    def step(self, tokens, state):
        self.calls += 1
        if self.calls == 5:
            raise RuntimeError("transient fault")
        return super().step(tokens, state)


def test_a_step_that_raises_decodes_its_requests_again_each_alone(model):
    search = SearchConfig(beam_size=2, nbest=2, max_len_a=0.0, max_len_b=12)
    worker = Worker(FailsOnce(model), ServerConfig(kv_cache="paged", block_size=4)).start()
    try:
        jobs = [worker.submit(units(2, seed), search, timeout=30) for seed in range(4)]
        for seed, job in enumerate(jobs):
            want = translate_ids(Endless(model), units(2, seed), search)
            assert [[h.tokens for h in nb] for nb in job.future.result(30)] == [
                [h.tokens for h in nb] for nb in want
            ]
    finally:
        worker.stop(10)
    assert worker.kv_blocks[0] == 0
