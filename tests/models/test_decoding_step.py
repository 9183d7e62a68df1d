"""decoding_step.run_layers against the decoder layer modules, step by step, in every layout decoding meets
(greedy rows, beams sharing a source, rows leaving, rows joining a running batch): with the layers' own
weights bitwise the same logits; with the products through the compiled kernel (models/cpu_linear.py) the same
to float rounding."""

import pytest
import torch

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID
from translate.models import cpu_linear, decoding_step
from translate.models.transformer import Transformer

V = 23
CONFIGS = {
    "post-norm relu": dict(num_heads=4),
    "pre-norm gelu": dict(num_heads=2, norm_first=True, activation="gelu", positions="learned"),
}

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(config: str, backend: str) -> Transformer:
    torch.manual_seed(0)
    kw = CONFIGS[config]
    return Transformer(V, V, d_model=16, ffn_dim=32, encoder_layers=2, decoder_layers=3,
                       attention_backend=backend, **kw).eval().requires_grad_(False)  # fmt: skip


def _sources(lengths):
    src = torch.full((len(lengths), max(lengths)), PAD_ID)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, V, (n,))
        src[i, n - 1] = EOS_ID
    return src


def _same(ref, got, bitwise: bool):
    assert len(ref) == len(got) > 0
    for a, b in zip(ref, got):
        if bitwise:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def _run(model, src, script, fast: bool, monkeypatch, beam: int = 1):
    """Steps of `script` after encoding src (beam > 1: G decoder rows per source, as beam search starts):
    ("step", tokens) | ("reorder", index) | ("join", src) -> the logits of each step."""
    monkeypatch.setattr(decoding_step, "applies", (lambda *a: True) if fast else (lambda *a: False))
    out = []
    with torch.no_grad():
        state = model.encode(src)
        if beam > 1:
            state = model.reorder_state(state, torch.arange(src.size(0)).repeat_interleave(beam))
        for kind, arg in script:
            if kind == "step":
                logits, state = model.step(arg, state)
                out.append(logits)
            elif kind == "reorder":
                state = model.reorder_state(state, arg)
            else:
                state = model.join_states(state, model.encode(arg))
    return out


def _script(rows: int, beam: int):
    g = torch.Generator().manual_seed(rows * 10 + beam)
    tokens = lambda n: torch.randint(4, V, (n,), generator=g)  # noqa: E731
    start = torch.full((rows * beam,), BOS_ID)
    return [
        ("step", start),
        ("step", tokens(rows * beam)),
        ("reorder", torch.arange(rows * beam).flip(0) if beam == 1 else torch.arange(rows * beam)),
        ("step", tokens(rows * beam)),
        ("reorder", torch.arange(beam, rows * beam)),  # the first source's rows leave
        ("step", tokens((rows - 1) * beam)),
        ("step", tokens((rows - 1) * beam)),
    ]


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "own-weights"])
@pytest.mark.parametrize("backend", ["sdpa", "math"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("beam", [1, 3])
def test_the_same_logits_as_the_layer_modules(config, backend, beam, kernel, monkeypatch):
    model = _model(config, backend)
    src, script = _sources([5, 9, 3]), _script(3, beam)
    ref = _run(model, src, script, False, monkeypatch, beam)
    if kernel and decoding_step.packed_products(model.decoder_layers[0]) is None:
        pytest.skip(f"no compiled kernel here: {cpu_linear.status()}")
    if not kernel:
        monkeypatch.setattr(decoding_step, "packed_products", lambda layer: None)
    got = _run(model, src, script, True, monkeypatch, beam)
    _same(ref, got, bitwise=not kernel)
    assert len(got) == 5


def test_rows_joining_a_running_batch_give_the_same_logits(monkeypatch):
    """Continuous batching: joined caches carry key masks; the fast path passes them on."""
    model = _model("post-norm relu", "sdpa")
    first, later = _sources([4, 7]), _sources([6])
    g = torch.Generator().manual_seed(3)
    script = [
        ("step", torch.full((2,), BOS_ID)),
        ("step", torch.randint(4, V, (2,), generator=g)),
        ("join", later),
        ("step", torch.tensor([5, 6, BOS_ID])),
        ("step", torch.randint(4, V, (3,), generator=g)),
    ]
    ref = _run(model, first, script, False, monkeypatch)
    got = _run(model, first, script, True, monkeypatch)
    _same(ref, got, bitwise=False)
    assert len(got) == 4


def test_applies_to_inference_only():
    model = _model("post-norm relu", "sdpa")
    with torch.no_grad():
        caches = model.encode(_sources([3]))["self_caches"]
        assert decoding_step.applies(model, caches)
        assert not decoding_step.applies(model.train(), caches)
        model.eval()
        paged = model.encode(_sources([3]), paged=model.new_block_pool(4))["self_caches"]
        assert not decoding_step.applies(model, paged)
    assert not decoding_step.applies(model, caches)  # autograd recording


def test_dynamic_int8_layers_keep_their_own_product(monkeypatch):
    from translate.models.quantize import quantize_dynamic_int8

    model = quantize_dynamic_int8(_model("post-norm relu", "sdpa"))
    src, script = _sources([5, 2]), _script(2, 1)
    assert all(decoding_step.packed_products(layer) is None for layer in model.decoder_layers)  # own products
    ref = _run(model, src, script, False, monkeypatch)
    got = _run(model, src, script, True, monkeypatch)
    _same(ref, got, bitwise=True)
    assert len(got) == 5


def test_packed_products_stack_qkv_and_follow_the_weights():
    model = _model("post-norm relu", "sdpa")
    layer = model.decoder_layers[0]
    first = decoding_step.packed_products(layer)
    if first is None:
        pytest.skip(f"no compiled kernel here: {cpu_linear.status()}")
    assert decoding_step.packed_products(layer) is first
    assert sorted(first) == ["cross_out", "cross_q", "ffn1", "ffn2", "qkv", "self_out"]
    assert (first["qkv"].out_features, first["qkv"].in_features) == (48, 16)
    with torch.no_grad():
        layer.ffn.linear1.weight.mul_(2)
        second = decoding_step.packed_products(layer)
        assert second is not first
        x = torch.randn(3, 16)
        torch.testing.assert_close(cpu_linear.linear(x, second["ffn1"]), layer.ffn.linear1(x))
    assert decoding_step.packed_products(_model("post-norm relu", "sdpa").double().decoder_layers[0]) is None
