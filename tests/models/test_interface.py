"""Seq2Seq's declared capabilities: a new model class that implements only the required methods gets search
and continuous batching (paged requested or not) with no edit elsewhere; a paged cache it lacks is refused."""

import pytest
import torch
from torch import nn

from translate.attention.paged import BlockPool
from translate.data.vocab import PAD_ID
from translate.models.interface import Seq2Seq
from translate.models.rnn_search import RNNsearch
from translate.search import SearchConfig, translate_ids
from translate.search.continuous import ContinuousDecoder

pytestmark = pytest.mark.usefixtures("one_thread")
V = 13


class MeanContext(Seq2Seq):
    """The smallest model: the mean source embedding and the previous token predict the next one."""

    def __init__(self, src_vocab_size: int = V, tgt_vocab_size: int = V, dim: int = 8):
        super().__init__()
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.src = nn.Embedding(src_vocab_size, dim, padding_idx=PAD_ID)
        self.tgt = nn.Embedding(tgt_vocab_size, dim)
        self.out = nn.Linear(2 * dim, tgt_vocab_size)

    def encode(self, src, paged=None):
        self.check_paged(paged)
        mask = (src != PAD_ID).float()[:, :, None]  # (B,S,1)
        return {"context": (self.src(src) * mask).sum(1) / mask.sum(1)}  # (B,E)

    def step(self, tokens, state):
        return self.out(torch.cat([self.tgt(tokens), state["context"]], -1)), state  # (B,V)

    def forward(self, src, tgt_in):
        c = self.encode(src)["context"][:, None].expand(-1, tgt_in.size(1), -1)  # (B,T,E)
        return self.out(torch.cat([self.tgt(tgt_in), c], -1))  # (B,T,V)

    def attention_weights(self, src, tgt_in):
        return {}


def sources(n: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(4, V, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]  # fmt: skip


@pytest.mark.parametrize("paged", [False, True])
def test_a_new_model_gets_continuous_batching_without_edits_elsewhere(paged):
    torch.manual_seed(0)
    model = MeanContext().eval()
    search = SearchConfig(beam_size=2, max_len_a=0.0, max_len_b=5, batch_tokens=20)
    decoder = ContinuousDecoder(model, search, paged=paged, block_size=4)
    assert decoder.pool is None  # the declared default: no self-attention cache to page
    srcs = sources(6)
    for i, ids in enumerate(srcs[:3]):
        decoder.add(i, ids)
    found, steps = {}, 0
    while decoder.busy:
        if steps == 2:
            for i, ids in enumerate(srcs[3:], 3):
                decoder.add(i, ids)
        found.update(decoder.step())
        assert decoder.kv_memory() == (0, 0)
        steps += 1
        assert steps < 100
    want = translate_ids(model, srcs, search)
    assert [[h.tokens for h in found[i]] for i in range(6)] == [[h.tokens for h in nb] for nb in want]


def test_a_paged_cache_the_model_lacks_is_refused_by_name():
    model = RNNsearch(V, V, emb_dim=8, hidden_dim=8, readout_dim=4, attention_dim=4)
    assert model.new_block_pool(4) is None and model.ct2_spec is None
    pool = BlockPool(1, 1, 4, 4, 2, torch.float32, torch.device("cpu"))
    with pytest.raises(ValueError, match="^RNNsearch keeps no self-attention cache to page"):
        model.encode(torch.tensor([[5, 6, 3]]), paged=pool)
