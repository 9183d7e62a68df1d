"""PyTorch dynamic int8 on every model kind: each Linear, GRU and GRUCell is swapped, the interface holds."""

import pytest
import torch
from conftest import TINY_MODELS, tiny_data_config
from torch.ao.nn.quantized import dynamic as qdyn

from translate.data.pipeline import prepare_data
from translate.engines import EngineError, load_engine
from translate.models.quantize import float_modules_left, quantize_dynamic_int8
from translate.search import SearchConfig, pad_sources, translate_ids

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, tiny_checkpoint):
    cache = tmp_path_factory.mktemp("q_cache")
    return {n: tiny_checkpoint(tmp_path_factory.mktemp(n) / "best.pt", n, cache) for n in TINY_MODELS}


@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_every_linear_and_gru_is_quantized_and_outputs_stay_close(name, checkpoints):
    fp32 = load_engine("torch", checkpoints[name]).model
    before = {type(m) for m in fp32.modules()}
    int8 = quantize_dynamic_int8(fp32)
    assert float_modules_left(int8) == []  # nothing left in float
    after = {type(m) for m in int8.modules()}
    assert qdyn.Linear in after
    if torch.nn.GRU in before:
        assert qdyn.GRU in after  # the encoders' (and RNNencdec's decoder) GRUs, packed sequences included
    if torch.nn.GRUCell in before:
        assert qdyn.GRUCell in after  # RNNsearch's decoder cell
    assert float_modules_left(fp32)  # the float model is left as it was

    rows = [[5, 9, 14, 7], [11, 6], [8, 8, 20, 30, 12, 4]]
    src, tgt = pad_sources(rows), pad_sources([[2, 9, 5], [2, 7], [2, 4, 4, 6]])[:, :-1]
    with torch.no_grad():
        a, b = fp32(src, tgt), int8(src, tgt)  # (B,T,V)
    assert not torch.equal(a, b)
    assert (a - b).abs().max() <= 0.05 * a.abs().max()  # int8 weights: small relative error

    # The interface holds: incremental steps follow teacher forcing (not bit for bit: activations are
    # quantized per call, so a step's scale differs from the whole sequence's).
    state = int8.encode(src)
    for t in range(tgt.size(1)):
        logits, state = int8.step(tgt[:, t], state)
        assert (logits - b[:, t]).abs().max() <= 0.05 * b.abs().max()
    search = SearchConfig(beam_size=3, nbest=2, max_len_a=0.0, max_len_b=5)
    hyps = translate_ids(int8, rows, search)
    assert [len(h) for h in hyps] == [2, 2, 2]


def test_engine_quantize_option(checkpoints, tmp_path):
    engine = load_engine("torch", checkpoints["rnnsearch"], quantize="int8")
    assert float_modules_left(engine.model) == [] and engine.info["quantization"] == "int8"
    assert "(dynamic int8)" in engine.describe()
    test = prepare_data(tiny_data_config(), tmp_path, splits=("test",), tokenizer=engine.tokenizer)
    src = [list(r) for r in test.datasets["test"]["src_ids"][:4]]
    assert len(engine.translate_ids(src, SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=4))) == 4
    with pytest.raises(EngineError, match="--quantize int8 runs on the CPU only"):
        load_engine("torch", checkpoints["rnnsearch"], device="cuda", quantize="int8")
    with pytest.raises(EngineError, match="--quantize int4: expected one of none|int8"):
        load_engine("torch", checkpoints["rnnsearch"], quantize="int4")
