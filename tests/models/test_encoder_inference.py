"""encoder_inference (the encoder layers and the cross-attention memory through the compiled kernel) against
the layer modules: padded sources, post-norm and pre-norm, every attention backend's dispatch; where it
applies."""

import pytest
import torch

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.models import cpu_linear, encoder_inference
from translate.models.transformer import Transformer

V = 29
CONFIGS = {
    "post-norm relu": dict(num_heads=4),
    "pre-norm gelu": dict(num_heads=2, norm_first=True, activation="gelu", positions="learned"),
}
pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(cpu_linear._library()[0] is None, reason=f"no compiled kernel: {cpu_linear.status()}"),
]


def _model(config: str, backend: str = "sdpa") -> Transformer:
    torch.manual_seed(0)
    return Transformer(V, V, d_model=16, ffn_dim=32, encoder_layers=2, decoder_layers=2,
                       attention_backend=backend, **CONFIGS[config]).eval().requires_grad_(False)  # fmt: skip


def _sources(lengths):
    src = torch.full((len(lengths), max(lengths)), PAD_ID)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, V, (n,))
        src[i, n - 1] = EOS_ID
    return src


def _encode_and_step(model, src, fast: bool, monkeypatch):
    if not fast:
        monkeypatch.setattr(encoder_inference, "packed", lambda m: None)
    with torch.no_grad():
        state = model.encode(src)
        logits, _ = model.step(torch.full((src.size(0),), BOS_ID), state)
    return state, logits


@pytest.mark.parametrize("backend", ["sdpa", "math"])
@pytest.mark.parametrize("config", CONFIGS)
def test_the_same_memory_and_logits_as_the_modules(config, backend, monkeypatch):
    model, src = _model(config, backend), _sources([6, 11, 1, 9])
    ref_state, ref_logits = _encode_and_step(model, src, False, monkeypatch)
    state, logits = _encode_and_step(model, src, True, monkeypatch)
    heads = model.decoder_layers[0].cross_attn.num_heads
    for ours, theirs in zip(state["cross_caches"], ref_state["cross_caches"], strict=True):
        assert ours.k.shape == theirs.k.shape == (4, heads, 11, 16 // heads)
        torch.testing.assert_close(ours.k, theirs.k, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.v, theirs.v, rtol=1e-5, atol=1e-5)
        assert torch.equal(ours.key_padding_mask, theirs.key_padding_mask)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)


def test_run_layers_matches_the_modules_on_padded_rows():
    model, src = _model("post-norm relu"), _sources([3, 8])
    x = torch.randn(2, 8, 16)
    with torch.no_grad():
        products = encoder_inference.packed(model)[0]
        got = encoder_inference.run_layers(model.encoder_layers, x, src.eq(PAD_ID), products)
        want = encoder_inference.run_layers_reference(model.encoder_layers, x, src.eq(PAD_ID))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_applies_to_kernel_served_inference_only():
    from translate.models.quantize import quantize_dynamic_int8

    model = _model("post-norm relu")
    assert not encoder_inference.applies(model)  # autograd recording
    with torch.no_grad():
        assert encoder_inference.applies(model)
        assert not encoder_inference.applies(model.train())
        assert not encoder_inference.applies(model.eval().requires_grad_(True))  # a training model
        assert not encoder_inference.applies(_model("post-norm relu").double())
        assert not encoder_inference.applies(quantize_dynamic_int8(_model("post-norm relu")))
