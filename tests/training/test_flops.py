"""translate/training/flops.py and the models' declared count: FLOPs per target token as the model counts them
(Seq2Seq.flops_per_target_token, linear_shapes), the matmul peak, the share, and a model that counts none."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from translate.models.build import build_model
from translate.models.interface import Seq2Seq
from translate.training.flops import Peak, matmul_peak, share_note

CONF = Path(__file__).resolve().parents[2] / "conf"


def model_config(**sizes) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "model/transformer.yaml"))
    return cfg | {"attention_backend": "math", "dropout": 0.0} | sizes


@pytest.mark.parametrize("src_len,tgt_len", [(7, 5), (4, 9)])
def test_the_count_equals_what_pytorch_counts_for_a_forward_and_backward_pass(src_len, tgt_len):
    """torch.utils.flop_counter counts every mm/addmm/bmm of our Transformer's step: the config formula must
    give exactly that number (the math path computes all keys, as the formula counts)."""
    cfg = model_config(d_model=16, ffn_dim=24, num_heads=2, encoder_layers=1, decoder_layers=2)
    vocab, batch = 50, 3
    model = build_model(cfg, vocab, vocab, True)
    src = torch.randint(4, vocab, (batch, src_len))
    tgt_in = torch.randint(4, vocab, (batch, tgt_len))
    with FlopCounterMode(display=False) as counter:
        logits = model(src, tgt_in)  # (B,T,V)
        logits.float().sum().backward()
    counted = model.flops_per_target_token(src_len, tgt_len) * batch * tgt_len
    assert counter.get_total_flops() == pytest.approx(counted, rel=1e-12)
    linears = {}  # every nn.Linear the pair passes through, by (out, in): what linear_shapes declares
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            key = (module.out_features, module.in_features)
            linears[key] = linears.get(key, 0) + 1
    assert model.linear_shapes() == linears


def test_the_default_model_is_about_46_mflop_per_target_token():
    model = build_model(model_config(), 8000, 8000, True)
    assert model.flops_per_target_token(40, 40) / 1e6 == pytest.approx(46.4, abs=0.05)
    assert model.linear_shapes() == {(256, 256): 36, (1024, 256): 6, (256, 1024): 6, (8000, 256): 1}


def test_matmul_peak_is_the_step_mix_of_the_products_it_timed():
    shapes = {(32, 16): 5, (64, 16): 1}
    peak = matmul_peak(shapes, "fp32", rows=48, repeats=2, min_s=0.0)
    assert [name for name, _ in peak.products] == ["48x16x32", "48x32x16", "32x48x16",
                                                   "48x16x64", "48x64x16", "64x48x16"]  # fmt: skip
    speeds = [g for _, g in peak.products]
    assert all(g > 0 for g in speeds)
    assert min(speeds) <= peak.gflops <= max(speeds)  # a FLOP-weighted harmonic mean lies between them
    assert f"{peak.gflops:.3g} GFLOP/s (fp32, the step's 6 Linear products at 48 rows" in peak.describe()


def test_share_note_divides_the_achieved_rate_by_the_peak():
    peak = Peak("bf16", 3000, 200.0, (("3000x256x1024", 400.0),))
    note = share_note(2000.0, 50e6, peak)  # 2,000 tok/s x 50 MFLOP = 100 GFLOP/s: half of 200
    expected = "2,000 target tok/s x 50 MFLOP = 100 GFLOP/s, 50% of the measured matmul peak 200 GFLOP/s"
    assert note.startswith(expected)
    assert "busy" not in note
    over = share_note(6000.0, 50e6, peak)  # 300 GFLOP/s against a 200 GFLOP/s peak: the peak was disturbed
    assert "150% of the measured matmul peak" in over and over.endswith("timed while the machine was busy")


def test_a_cpu_transformer_run_logs_its_flops_peak_and_share_once(smoke_cfg, tmp_path, capsys):
    import re

    from translate.training.loop import train

    train(smoke_cfg("trainer.max_steps=2", "trainer.val_every_steps=0"), tmp_path)
    err = capsys.readouterr().err
    flops_lines = [line for line in err.splitlines() if "FLOPs: " in line]
    shares = [line for line in err.splitlines() if "utilisation: " in line]
    assert len(flops_lines) == 1 and len(shares) == 1 and "matmul peak" in flops_lines[0]
    pattern = (r"utilisation: ([\d,]+) target tok/s x ([\d.]+) MFLOP = ([\d.]+) GFLOP/s, (\d+)% of the "
               r"measured matmul peak ([\d.]+) GFLOP/s \(fp32")
    m = re.search(pattern, shares[0])
    assert m, shares[0]
    rate, mflop, gflops, share, peak = (float(g.replace(",", "")) for g in m.groups())
    assert mflop == float(re.search(r"FLOPs: ([\d.]+) MFLOP", flops_lines[0]).group(1))
    assert gflops == pytest.approx(rate * mflop / 1e3, rel=0.02)  # 3 significant digits, tok/s rounded
    assert peak > 0 and share == pytest.approx(100 * gflops / peak, abs=1.5)


class Uncounted(Seq2Seq):
    """A model that implements the required interface and declares no FLOP count (Seq2Seq's None)."""

    src_vocab_size = tgt_vocab_size = 10

    def forward(self, src, tgt_in):
        return torch.zeros(*tgt_in.shape, 10)

    def encode(self, src, paged=None):
        return {}

    def step(self, tokens, state):
        return torch.zeros(tokens.shape[0], 10), state

    def attention_weights(self, src, tgt_in):
        return {}


def test_a_model_without_a_declared_count_gets_no_utilisation_and_the_reason():
    from translate.training.setup import utilisation_basis

    trainer = OmegaConf.create({"precision": "fp32", "max_tokens": 64})
    rnn = build_model(OmegaConf.to_container(OmegaConf.load(CONF / "model/rnnsearch.yaml")), 20, 20, True)
    for model in (Uncounted(), rnn):
        flops, peak, why = utilisation_basis(model, None, trainer, torch.device("cpu"))
        assert (flops, peak) == (0.0, None)
        assert why.startswith(f"not counted: {type(model).__name__} declares no flops_per_target_token")
    transformer = build_model(model_config(d_model=16, ffn_dim=32, num_heads=2), 20, 20, True)
    assert utilisation_basis(transformer, None, trainer, torch.device("cuda")) == (0.0, None, "")
