"""attention_backend=auto on a CPU: the model's own step is timed per backend, once per machine (cached)."""

import json

import torch

from translate.models.rnn_encdec import RNNencdec
from translate.models.transformer import Transformer
from translate.training.backend_choice import choose_attention_backend, machine_key, step_seconds
from translate.training.precision import autocast_for

CPU = torch.device("cpu")
FP32 = autocast_for("fp32", CPU)


def tiny_transformer():
    sizes = dict(d_model=16, ffn_dim=32, num_heads=2, encoder_layers=1, decoder_layers=1)
    return Transformer(src_vocab_size=64, tgt_vocab_size=64, attention_backend="auto", **sizes)


def backends(model):
    return {m.backend for m in model.modules() if hasattr(m, "backend")}


def scripted(times):
    """A measurement that reports `times[backend]` for whatever backend the model is set to."""
    calls = []

    def measure(model, autocast, tokens):
        (name,) = backends(model)
        calls.append(name)
        return times[name]

    return measure, calls


def test_the_faster_backend_is_applied_and_cached(tmp_path):
    model, cache = tiny_transformer(), tmp_path / "choice.json"
    measure, calls = scripted({"math": 1.3, "sdpa": 1.1})
    assert choose_attention_backend(model, "fp32", FP32, CPU, 100, cache, measure)[0] == "sdpa"
    assert backends(model) == {"sdpa"} and sorted(calls) == ["math", "sdpa"]
    assert list(json.loads(cache.read_text()).values()) == [
        {"backend": "sdpa", "seconds": {"math": 1.3, "sdpa": 1.1}}
    ]

    again = tiny_transformer()
    measure2, calls2 = scripted({"math": 0.1, "sdpa": 9.0})  # would pick math if it measured
    backend, reason = choose_attention_backend(again, "fp32", FP32, CPU, 100, cache, measure2)
    assert backend == "sdpa" and calls2 == [] and "measured earlier" in reason and backends(again) == {"sdpa"}


def test_another_precision_is_measured_on_its_own(tmp_path):
    cache = tmp_path / "choice.json"
    choose_attention_backend(
        tiny_transformer(), "fp32", FP32, CPU, 100, cache, scripted({"math": 2, "sdpa": 1})[0]
    )
    measure, calls = scripted({"math": 1, "sdpa": 2})
    model = tiny_transformer()
    assert choose_attention_backend(model, "bf16", FP32, CPU, 100, cache, measure)[0] == "math" and calls
    assert machine_key("fp32", model, 100) != machine_key("bf16", model, 100)
    assert len(json.loads(cache.read_text())) == 2


def test_nothing_is_measured_off_the_cpu_or_without_dot_product_attention(tmp_path):
    measure, calls = scripted({})
    model = tiny_transformer()
    assert (
        choose_attention_backend(model, "bf16", FP32, torch.device("cuda"), 100, None, measure)[0] == "auto"
    )
    rnn = RNNencdec(src_vocab_size=64, tgt_vocab_size=64, emb_dim=8, hidden_dim=8, readout_dim=8)
    assert choose_attention_backend(rnn, "fp32", FP32, CPU, 100, None, measure)[0] == "auto"
    assert calls == [] and backends(model) == {"auto"}


def test_a_real_measurement_leaves_no_trace():
    torch.manual_seed(0)
    model = tiny_transformer().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    assert step_seconds(model, FP32, tokens=64, length=8, steps=1) > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
