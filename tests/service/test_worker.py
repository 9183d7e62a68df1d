"""The model worker: every scheduler gives the offline translations; deadlines and cancellations drop work."""

import time

import pytest
import torch

from tests.service.live import Endless
from translate.models.transformer import Transformer
from translate.search import SearchConfig, translate_ids
from translate.service import ServerConfig
from translate.service.worker import DeadlineExceeded, QueueFull, Worker

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
    slow = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=3000)
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
