"""Continuous batching gives exactly the offline translations, whatever joins and leaves the batch."""

import pytest
import torch

from translate.models.rnn_search import RNNsearch
from translate.models.transformer import Transformer
from translate.search import SearchConfig, translate_ids
from translate.search.continuous import ContinuousDecoder

pytestmark = pytest.mark.usefixtures("one_thread")
V = 29
MODELS = {
    "transformer": lambda: Transformer(V, V, d_model=16, ffn_dim=32, num_heads=2, encoder_layers=1,
                                       decoder_layers=2),
    "transformer_learned": lambda: Transformer(V, V, d_model=16, ffn_dim=32, num_heads=2, encoder_layers=1,
                                               decoder_layers=2, positions="learned", max_positions=64),
    "rnnsearch": lambda: RNNsearch(V, V, emb_dim=12, hidden_dim=16, readout_dim=8, attention_dim=10),
}  # fmt: skip


def sources(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(4, V, (int(torch.randint(1, 12, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]  # fmt: skip


def run(decoder, srcs, arrive_every=2, per_arrival=3):
    """Sentences arrive a few at a time while others decode; -> per sentence its hypotheses."""
    found, pending, steps = {}, list(enumerate(srcs)), 0
    while pending or decoder.busy:
        if steps % arrive_every == 0:
            for key, ids in pending[:per_arrival]:
                decoder.add(key, ids)
            pending = pending[per_arrival:]
        for key, hyps in decoder.step():
            found[key] = hyps
        steps += 1
        assert steps < 10_000
    return [found[i] for i in range(len(srcs))]


GREEDY = SearchConfig(beam_size=1, max_len_a=1.0, max_len_b=3, batch_tokens=40)
BEAM = SearchConfig(beam_size=3, nbest=2, alpha=0.6, max_len_a=1.0, max_len_b=3, batch_tokens=40)
SAMPLE = SearchConfig(strategy="sample", nbest=1, sampling_topk=8, sampling_temperature=1.5, seed=7,
                      max_len_a=1.0, max_len_b=3, batch_tokens=40)  # fmt: skip
REPEATS = dict(no_repeat_ngram_size=3, repetition_penalty=1.5, repeat_guard=2)
GREEDY_REP = SearchConfig(**{**GREEDY.__dict__, **REPEATS})
BEAM_REP = SearchConfig(**{**BEAM.__dict__, **REPEATS})
BEAM_K_ENDED = SearchConfig(**{**BEAM.__dict__, "stopping": "k_ended"})


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("paged", [False, True])
@pytest.mark.parametrize("search", [GREEDY, BEAM, SAMPLE, GREEDY_REP, BEAM_REP, BEAM_K_ENDED],
                         ids=["greedy", "beam", "sample", "greedy_repeats", "beam_repeats", "beam_k_ended"])
def test_joins_and_leaves_give_the_offline_translations(name, paged, search):
    torch.manual_seed(1)
    model = MODELS[name]().eval()
    srcs = sources(14)
    decoder = ContinuousDecoder(model, search, paged=paged, block_size=4)
    got = run(decoder, srcs)
    want = translate_ids(model, srcs, search)
    assert [[h.tokens for h in nb] for nb in got] == [[h.tokens for h in nb] for nb in want]
    if search.width > 1:  # beam search ranks; greedy and sampling give score NaN
        for g, w in zip(got, want):
            assert [h.score for h in g] == pytest.approx([h.score for h in w], rel=1e-4)
    assert decoder.kv_blocks()[0] == 0 and decoder.state is None  # every block given back


def test_token_budget_and_cancel():
    torch.manual_seed(1)
    model = MODELS["transformer"]().eval()
    search = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=6, batch_tokens=20)
    decoder = ContinuousDecoder(model, search, paged=True, block_size=4)
    srcs = sources(8, seed=3)
    for key, ids in enumerate(srcs):
        decoder.add(key, ids)
    finished = {}
    for _ in range(3):
        finished.update(decoder.step())
        assert sum(decoder.src_tokens) <= 20 and decoder.running >= 1
    decoder.cancel([0, 7])  # one running, one waiting
    assert 0 not in decoder.keys and all(k != 7 for k, *_ in decoder.waiting)
    while decoder.busy:
        finished.update(decoder.step())
    assert sorted(finished) == [1, 2, 3, 4, 5, 6]
    assert decoder.kv_blocks()[0] == 0


@pytest.mark.parametrize("name", ["transformer", "rnnsearch"])
def test_per_sentence_alpha_and_length_limits_share_one_batch_and_pool(name):
    """Sentences with different alphas and length limits decode in one running batch (and two decoders of
    different beam sizes in one BlockPool), each getting exactly what translate_ids gives it alone."""
    torch.manual_seed(1)
    model = MODELS[name]().eval()
    srcs = sources(12, seed=5)
    settings = [SearchConfig(beam_size=3, nbest=2, alpha=a, max_len_a=la, max_len_b=lb, batch_tokens=40)
                for a, la, lb in [(0.0, 1.0, 3), (0.6, 0.5, 5), (2.0, 2.0, 1), (5.0, 0.0, 9)]]  # fmt: skip
    wide = SearchConfig(beam_size=4, nbest=1, alpha=1.0, batch_tokens=40)
    pool = model.new_block_pool(4) if hasattr(model, "new_block_pool") else None
    three = ContinuousDecoder(model, settings[0], pool=pool)
    four = ContinuousDecoder(model, wide, pool=pool)
    found, pending = {}, list(enumerate(srcs))
    for step in range(10_000):
        if step % 2 == 0 and pending:
            for key, ids in pending[:3]:
                if key % 3 == 2:
                    four.add(key, ids, wide)
                else:
                    three.add(key, ids, settings[key % 4])
            pending = pending[3:]
        for decoder in (three, four):
            if decoder.busy:
                found.update(decoder.step())
        if not (pending or three.busy or four.busy):
            break
    for key, ids in enumerate(srcs):
        search = wide if key % 3 == 2 else settings[key % 4]
        want = translate_ids(model, [ids], search)[0]
        assert [h.tokens for h in found[key]] == [h.tokens for h in want], (key, search)
        assert [h.score for h in found[key]] == pytest.approx([h.score for h in want], rel=1e-4)
    if pool is not None:
        assert pool.in_use == 0


def test_a_decoder_refuses_settings_of_another_shape():
    model = MODELS["transformer"]().eval()
    decoder = ContinuousDecoder(model, BEAM)
    with pytest.raises(ValueError, match="shape"):
        decoder.add(0, [5, 6], SearchConfig(beam_size=4, batch_tokens=40))
    with pytest.raises(ValueError, match="shape"):  # another stopping rule: best keeps other columns
        decoder.add(0, [5, 6], BEAM_K_ENDED)
