"""Each model can learn: it overfits one small batch to near-zero loss within seconds."""

import pytest
import torch
import torch.nn.functional as F

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.models.rnn_encdec import RNNencdec
from translate.models.rnn_search import RNNsearch
from translate.models.transformer import Transformer

V = 20
MODELS = {
    "rnnencdec": lambda: RNNencdec(V, V, emb_dim=32, hidden_dim=64, readout_dim=32),
    "rnnsearch": lambda: RNNsearch(V, V, emb_dim=32, hidden_dim=32, readout_dim=32, attention_dim=32),
    "transformer": lambda: Transformer(
        V,
        V,
        d_model=32,
        ffn_dim=64,
        num_heads=4,
        encoder_layers=1,
        decoder_layers=1,
        dropout=0.0,
        attention_dropout=0.0,
    ),  # fmt: skip
}


pytestmark = pytest.mark.usefixtures("one_thread")


def reversal_batch(n: int = 8, length: int = 6):
    """Target = reversed source (padding and lengths vary)."""
    lengths = [length - (i % 3) for i in range(n)]
    src = torch.full((n, length + 1), PAD_ID)
    tgt_in = torch.full((n, length + 1), PAD_ID)
    tgt_out = torch.full((n, length + 1), PAD_ID)
    for i, k in enumerate(lengths):
        words = torch.randint(4, V, (k,))
        src[i, : k + 1] = torch.cat([words, torch.tensor([EOS_ID])])
        tgt_in[i, : k + 1] = torch.cat([torch.tensor([BOS_ID]), words.flip(0)])
        tgt_out[i, : k + 1] = torch.cat([words.flip(0), torch.tensor([EOS_ID])])
    return src, tgt_in, tgt_out


@pytest.mark.parametrize("name", MODELS)
def test_overfits_one_batch(name):
    model = MODELS[name]().train()
    src, tgt_in, tgt_out = reversal_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD_ID)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.02:
            break
    assert loss.item() < 0.02, f"{name}: loss {loss.item():.3f} after 150 steps"
    model.eval()
    with torch.no_grad():
        predicted = model(src, tgt_in).argmax(-1)
    real = tgt_out.ne(PAD_ID)
    assert torch.equal(predicted[real], tgt_out[real])
