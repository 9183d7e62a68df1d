"""The Seq2Seq contract, for every model: incremental decoding = teacher forcing, padding and causality
invariance, beam-search reordering and attention maps."""

import pytest
import torch

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.models.rnn_encdec import RNNencdec
from translate.models.rnn_search import RNNsearch
from translate.models.transformer import Transformer

V = 23
TINY = {
    "rnnencdec": lambda **kw: RNNencdec(V, V, emb_dim=12, hidden_dim=16, readout_dim=8, **kw),
    "rnnsearch": lambda **kw: RNNsearch(
        V, V, emb_dim=12, hidden_dim=16, readout_dim=8, attention_dim=10, **kw
    ),
    "rnnsearch_luong_general": lambda **kw: RNNsearch(
        V, V, emb_dim=12, hidden_dim=16, readout_dim=8, attention="luong_general", **kw
    ),
    "rnnsearch_luong_concat": lambda **kw: RNNsearch(
        V, V, emb_dim=12, hidden_dim=16, readout_dim=8, attention="luong_concat", attention_dim=10, **kw
    ),
    "transformer": lambda **kw: Transformer(
        V, V, d_model=16, ffn_dim=32, num_heads=4, encoder_layers=2, decoder_layers=2, **kw
    ),
    "transformer_prenorm_learned_gelu": lambda **kw: Transformer(
        V,
        V,
        d_model=16,
        ffn_dim=32,
        num_heads=2,
        encoder_layers=2,
        decoder_layers=2,
        norm_first=True,
        positions="learned",
        activation="gelu",
        **kw,
    ),  # fmt: skip
}
ATTENTIVE = [name for name in TINY if name != "rnnencdec"]


pytestmark = pytest.mark.usefixtures("one_thread")


def make(name: str, backend: str = "math") -> torch.nn.Module:
    return TINY[name](attention_backend=backend).eval()


def padded_batch(lengths: list[int], extra_pad: int = 0, first: int | None = None) -> torch.Tensor:
    """Random right-padded ids (B, max(lengths)+extra_pad), each row ending in EOS (sources) or starting
    with BOS (targets, when first=BOS_ID)."""
    out = torch.full((len(lengths), max(lengths) + extra_pad), PAD_ID)
    for i, n in enumerate(lengths):
        out[i, :n] = torch.randint(4, V, (n,))
        if first is None:
            out[i, n - 1] = EOS_ID
        else:
            out[i, 0] = first
    return out


def decode_stepwise(model, src, tgt_in):
    state = model.encode(src)
    logits = []
    for t in range(tgt_in.size(1)):
        step_logits, state = model.step(tgt_in[:, t], state)
        logits.append(step_logits)
    return torch.stack(logits, 1)  # (B,T,V)


@pytest.mark.parametrize("backend", ["math", "sdpa"])
@pytest.mark.parametrize("name", TINY)
def test_step_matches_teacher_forcing(name, backend):
    model = make(name, backend)
    src = padded_batch([7, 3, 5, 1])
    tgt_in = padded_batch([6, 2, 4, 1], first=BOS_ID)
    with torch.no_grad():
        forced = model(src, tgt_in)
        stepped = decode_stepwise(model, src, tgt_in)
    assert forced.shape == (4, 6, V)
    torch.testing.assert_close(stepped, forced, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_extra_padding_changes_no_real_output(name):
    model = make(name)
    src = padded_batch([6, 3, 5])
    tgt_in = padded_batch([5, 2, 4], first=BOS_ID)
    tgt_real = tgt_in.ne(PAD_ID)  # (B,T) positions whose logits matter
    with torch.no_grad():
        ref = model(src, tgt_in)
        # Longer padding on both sides and two more rows (one longer than every original row).
        src_big = torch.nn.functional.pad(src, (0, 4), value=PAD_ID)
        src_big = torch.cat([src_big, padded_batch([10, 2])], 0)
        tgt_big = torch.nn.functional.pad(tgt_in, (0, 3), value=PAD_ID)
        tgt_big = torch.cat([tgt_big, padded_batch([8, 1], first=BOS_ID)], 0)
        big = model(src_big, tgt_big)
    assert big.shape == (5, 8, V)
    torch.testing.assert_close(big[:3, :5][tgt_real], ref[tgt_real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", TINY)
def test_later_target_tokens_do_not_change_earlier_logits(name):
    model = make(name)
    src = padded_batch([6, 4])
    tgt_in = padded_batch([7, 7], first=BOS_ID)
    changed = tgt_in.clone()
    changed[:, 4:] = torch.randint(4, V, (2, 3))
    with torch.no_grad():
        a, b = model(src, tgt_in), model(src, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-6, rtol=1e-6)
    assert (a[:, 4:] - b[:, 4:]).abs().max() > 1e-4  # and the later ones do see the change


@pytest.mark.parametrize("name", TINY)
def test_source_changes_reach_the_decoder(name):
    model = make(name)
    src = padded_batch([6, 4])
    other = src.clone()
    other[:, 0] = (other[:, 0] - 4 + 1) % (V - 4) + 4  # a different real token at the first position
    tgt_in = padded_batch([5, 5], first=BOS_ID)
    with torch.no_grad():
        assert (model(src, tgt_in) - model(other, tgt_in)).abs().max() > 1e-4


@pytest.mark.parametrize("name", TINY)
def test_reorder_state_duplicates_permutes_and_shrinks(name):
    """Beam search expands rows, reorders them between steps and drops finished ones: each row must decode
    exactly as the row it was copied from."""
    model = make(name)
    src = padded_batch([5, 3, 6])
    tgt_in = padded_batch([4, 4, 4], first=BOS_ID)
    with torch.no_grad():
        ref = decode_stepwise(model, src, tgt_in)  # (3,4,V)
        state = model.encode(src)
        logits, state = model.step(tgt_in[:, 0], state)
        expand = torch.tensor([0, 0, 1, 2, 2])  # beam-style duplication
        state = model.reorder_state(state, expand)
        logits, state = model.step(tgt_in[expand, 1], state)
        torch.testing.assert_close(logits, ref[expand, 1], atol=1e-5, rtol=1e-5)
        shrink = torch.tensor([4, 2, 1])  # permute and drop rows: now (row 2, row 1, row 0)
        state = model.reorder_state(state, shrink)
        rows = expand[shrink]
        for t in (2, 3):
            logits, state = model.step(tgt_in[rows, t], state)
            torch.testing.assert_close(logits, ref[rows, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ATTENTIVE)
def test_attention_weights_are_distributions_over_real_source_tokens(name):
    model = make(name)
    src = padded_batch([6, 3])
    tgt_in = padded_batch([4, 4], first=BOS_ID)
    with torch.no_grad():
        maps = model.attention_weights(src, tgt_in)
    assert maps, "an attentive model returns at least one map"
    for key, w in maps.items():
        assert w.shape[0] == 2 and w.shape[-2:] == (4, 6), key
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5, rtol=0)
        assert w[1, ..., 3:].abs().max() == 0  # no weight on the padding of the short source


def test_encdec_has_no_attention_maps():
    assert make("rnnencdec").attention_weights(padded_batch([3]), padded_batch([2], first=BOS_ID)) == {}


def test_additive_attention_is_the_rnnsearch_default_and_named_in_its_map():
    model = make("rnnsearch")
    maps = model.attention_weights(padded_batch([3]), padded_batch([2], first=BOS_ID))
    assert list(maps) == ["additive"] and maps["additive"].shape == (1, 2, 3)


def test_unknown_options_fail_with_the_option_name():
    with pytest.raises(ValueError, match="model.attention"):
        RNNsearch(V, V, attention="luong_dot")
    with pytest.raises(ValueError, match="model.positions"):
        Transformer(V, V, d_model=8, num_heads=2, positions="rotary")
    with pytest.raises(ValueError, match="model.activation"):
        Transformer(V, V, d_model=8, num_heads=2, activation="tanh")


def test_transformer_ties_embeddings_as_configured():
    shared = Transformer(V, V, shared_vocab=True, d_model=8, ffn_dim=8, num_heads=2)
    assert shared.src_embedding.weight is shared.tgt_embedding.weight is shared.output.weight
    split = Transformer(V, V + 5, shared_vocab=False, d_model=8, ffn_dim=8, num_heads=2)
    assert split.src_embedding.weight is not split.tgt_embedding.weight
    assert split.tgt_embedding.weight is split.output.weight
    untied = Transformer(V, V, shared_vocab=True, d_model=8, ffn_dim=8, num_heads=2, tie_embeddings=False)
    assert untied.output.weight is not untied.tgt_embedding.weight
    assert untied.num_parameters() - shared.num_parameters() == 2 * V * 8


def test_describe_reports_the_parameter_count():
    """The analytic count of the tiny Transformer (E=16, F=32, 2 + 2 layers), tied weights counted once."""
    E, F, layers = 16, 32, 2
    attention = 4 * (E * E + E)  # q, k, v and output projections, with biases
    ffn = (E * F + F) + (F * E + E)
    norm = 2 * E
    encoder_layer = attention + ffn + 2 * norm
    decoder_layer = 2 * attention + ffn + 3 * norm  # self- and cross-attention
    embeddings = 2 * V * E  # source and target; the output layer is the target embedding (tied, no bias)
    n = embeddings + layers * (encoder_layer + decoder_layer)
    model = make("transformer")
    assert model.num_parameters() == n
    assert f"{n:,} parameters" in model.describe() and model.describe().startswith("Transformer")


def test_transformer_tells_search_its_position_limit():
    assert make("transformer").max_positions is None  # sinusoids extend to any length
    assert make("transformer_prenorm_learned_gelu").max_positions == 1024


def test_transformer_reorder_within_sources_keeps_the_source_side_uncopied():
    """Beam reorders within a sentence's rows leave the cross-attention caches as they are; a reorder that
    moves rows to other sources (or drops rows) selects them; decoding matches the reference either way."""
    model = make("transformer")
    src = padded_batch([5, 3])
    tgt_in = padded_batch([4, 4], first=BOS_ID)
    with torch.no_grad():
        ref = decode_stepwise(model, src, tgt_in)  # (2,4,V)
        state = model.reorder_state(model.encode(src), torch.tensor([0, 0, 1, 1]))  # beam expansion
        assert state["cross_caches"][0].k.shape[0] == 2  # one row per source, not per beam
        logits, state = model.step(tgt_in[[0, 0, 1, 1], 0], state)
        cross = [(c.k, c.v) for c in state["cross_caches"]]
        state = model.reorder_state(state, torch.tensor([1, 0, 3, 3]))  # within each sentence's beams
        assert all(c.k.data_ptr() == k.data_ptr() and c.v.data_ptr() == v.data_ptr() and c.k.shape == k.shape
                   for c, (k, v) in zip(state["cross_caches"], cross))  # the same storage: nothing copied
        logits, state = model.step(tgt_in[[0, 0, 1, 1], 1], state)
        torch.testing.assert_close(logits, ref[[0, 0, 1, 1], 1], atol=1e-5, rtol=1e-5)
        state = model.reorder_state(state, torch.tensor([2, 1]))  # across sentences: now sentence 1, then 0
        assert state["cross_caches"][0].k.shape[0] == 2
        for t in (2, 3):
            logits, state = model.step(tgt_in[[1, 0], t], state)
            torch.testing.assert_close(logits, ref[[1, 0], t], atol=1e-5, rtol=1e-5)


def test_transformer_beams_share_their_source_and_finished_sources_leave():
    """K beams of a sentence read one copy of its source (as K queries of it); a sentence whose rows all
    leave takes its source rows with it; rows in any other layout read gathered copies; all match."""
    from translate.models.transformer import source_groups

    model = make("transformer")
    src = padded_batch([5, 3, 4])
    tgt_in = padded_batch([4, 4, 4], first=BOS_ID)
    with torch.no_grad():
        ref = decode_stepwise(model, src, tgt_in)  # (3,4,V)
        state = model.reorder_state(model.encode(src), torch.arange(3).repeat_interleave(3))  # 3 beams each
        assert source_groups(state["src_rows"], 3) == 3
        logits, state = model.step(tgt_in[torch.arange(3).repeat_interleave(3), 0], state)
        torch.testing.assert_close(logits, ref[torch.arange(3).repeat_interleave(3), 0], atol=1e-5, rtol=1e-5)
        state = model.reorder_state(state, torch.tensor([6, 7, 8, 0, 1, 2]))  # sentence 1 done; 2 before 0
        assert state["cross_caches"][0].k.shape[0] == 2  # sentence 1's source is gone
        assert source_groups(state["src_rows"], 2) is None  # sources out of order: gathered copies
        logits, state = model.step(tgt_in[[2, 2, 2, 0, 0, 0], 1], state)
        torch.testing.assert_close(logits, ref[[2, 2, 2, 0, 0, 0], 1], atol=1e-5, rtol=1e-5)
        state = model.reorder_state(state, torch.tensor([3, 4]))  # sentence 0 alone, 2 beams
        assert state["cross_caches"][0].k.shape[0] == 1 and source_groups(state["src_rows"], 1) == 2
        logits, state = model.step(tgt_in[[0, 0], 2], state)
        torch.testing.assert_close(logits, ref[[0, 0], 2], atol=1e-5, rtol=1e-5)


def test_transformer_joined_rows_keep_their_own_source_after_a_reorder():
    """Sentences joining a running batch get source labels of their own: a reorder that moves a joined row
    onto a position whose old label collides would otherwise keep the wrong cross-attention keys/values."""
    model = make("transformer")
    src = padded_batch([5, 3, 4])
    tgt_in = padded_batch([4, 4, 4], first=BOS_ID)
    with torch.no_grad():
        ref = decode_stepwise(model, src, tgt_in)  # (3,4,V)
        running = model.encode(src[[0, 1]])
        _, running = model.step(tgt_in[[0, 1], 0], running)  # two sentences, one step in
        state = model.join_states(running, model.encode(src[[2]]))  # a third joins at position 0
        state = model.reorder_state(state, torch.tensor([2, 1, 0]))  # the joined row moves to the front
        logits, _ = model.step(torch.stack([tgt_in[2, 0], tgt_in[1, 1], tgt_in[0, 1]]), state)
    torch.testing.assert_close(logits, torch.stack([ref[2, 0], ref[1, 1], ref[0, 1]]), atol=1e-5, rtol=1e-5)
