"""CTranslate2 export and engine: the exported network computes ours; the same settings run the same search.

Every architecture option (post/pre-norm, sinusoidal/learned positions, tied/untied output, relu/gelu,
joint/separate vocabularies) is checked on a randomly initialised model: CTranslate2's teacher-forced
log-probabilities equal ours and greedy decoding gives our tokens. A tiny Transformer half-trained on a copy
task (committed: tests/fixtures/copy_transformer.pt, so every CPU tests the same weights; its hypotheses end
on </s> at mixed lengths, as a real model's do) gives our greedy output and our beam-4 n-best lists, tokens
and scores.

Two searches over the same weights on different kernels (ours through PyTorch's, CTranslate2's own; AVX2,
AVX-512 or ARM) agree up to rounding, so an output may differ where two candidates tie within it: each
comparison is made per sentence and excuses a difference only where our model scores the two choices within
TIE of each other (greedy), or where two hypotheses of a list tie within TIE (beam). A quantized export is
compared the same way with the margin its rounding allows; what it runs as is CTranslate2's compute type,
asserted against the library's documented fallbacks on this CPU.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from conftest import ROOT, TINY_MODELS, tiny_data_config
from fixtures.make_copy_model import copy_rows
from omegaconf import OmegaConf

from translate.data.pipeline import prepare_data
from translate.data.vocab import BOS_ID, EOS_ID
from translate.engines import CT2_STOPPING, EngineError, load_engine
from translate.engines import ct2 as ct2_engine
from translate.engines.ct2 import CT2Engine, runs_as_exported
from translate.engines.ct2_export import ExportError, export_ct2, transformer_spec
from translate.models.build import build_model
from translate.models.checkpoint import save_checkpoint
from translate.search import Hypothesis, SearchConfig, length_penalty, pad_sources, translate_ids
from translate.search.config import REPETITION_OFF
from translate.search.stepper import bos, mask_specials

ct2 = pytest.importorskip("ctranslate2")

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = {
    "post-norm sinusoidal tied joint": {},
    "pre-norm": {"norm_first": True},
    "learned positions": {"positions": "learned", "max_positions": 48},
    "untied gelu": {"tie_embeddings": False, "activation": "gelu"},
    "separate vocabularies": {"joint": False},
    "separate untied pre-norm learned": {"joint": False, "tie_embeddings": False, "norm_first": True,
                                         "positions": "learned", "max_positions": 48},
}  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ct2_cache")


def tokenizer_and_data(cache, joint: bool = True):
    data = tiny_data_config()
    data.tokenizer.joint = joint
    return prepare_data(data, cache, splits=("train",)).tokenizer, data


def write_checkpoint(path, model, model_cfg, tok, data):
    payload = {"model": model.state_dict(), "model_config": OmegaConf.to_container(model_cfg),
               "tokenizer": tok.state_dict(), "config": {"data": OmegaConf.to_container(data)},
               "step": 3}  # fmt: skip
    save_checkpoint(path, payload)
    return path


def random_checkpoint(path, cache, name="transformer", **overrides):
    """A tiny model with weights spread out (noise 0.5), so its greedy choices are far from ties."""
    tok, data = tokenizer_and_data(cache, overrides.pop("joint", True))
    mc = OmegaConf.load(ROOT / f"conf/model/{name}.yaml")
    mc.update({**TINY_MODELS[name], **overrides})
    torch.manual_seed(0)
    model = build_model(mc, tok.src_vocab_size, tok.tgt_vocab_size, tok.shared)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return write_checkpoint(path, model, mc, tok, data)


# Log-probability (nats) within which two candidates tie up to the rounding of two float32 implementations:
# 5x the 2e-4 to which CTranslate2's teacher-forced log-probabilities match ours (below).
TIE = 1e-3


def step_logprobs(model, row, prefix) -> torch.Tensor:
    """Our log p(. | row, prefix) (V,), the specials masked as our search masks them."""
    with torch.no_grad():
        logits = model(pad_sources([row]), torch.tensor([[BOS_ID] + list(prefix)]))[:, -1]  # (1, V)
    return mask_specials(logits.float()).log_softmax(-1)[0]


def divergence_gap(model, row, ref: list[int], got: list[int]) -> float:
    """0 if the outputs are equal; else, where they first part (EOS included), how much more log-probability
    our model gives ref's token than got's (>= 0 when ref is our greedy choice)."""
    a, b = ref + [EOS_ID], got + [EOS_ID]
    for j, (x, y) in enumerate(zip(a, b)):
        if x != y:
            lp = step_logprobs(model, row, a[:j])
            return (lp[x] - lp[y]).item()
    return 0.0


def assert_greedy_agrees(model, rows, ref, got, margin: float = TIE) -> int:
    """Per sentence: the same tokens, or the first difference is a tie within `margin` in our model.
    -> the number of sentences excused by a tie."""
    excused = 0
    for row, r, g in zip(rows, ref, got):
        gap = divergence_gap(model, row, r, g)
        assert abs(gap) <= margin, (row, r, g, gap)
        excused += r != g
    return excused


def assert_nbest_agrees(a: list[Hypothesis], b: list[Hypothesis], rel: float = 1e-4) -> None:
    """Two n-best lists of one sentence: the same scores and log-probabilities rank by rank; the same tokens
    at every rank, except where the two lists hold hypotheses that tie within TIE (they may swap, or trade
    the last place)."""
    assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=rel)
    assert [h.logprob for h in a] == pytest.approx([h.logprob for h in b], rel=rel)
    scores = [h.score for h in a + b]
    for i, (x, y) in enumerate(zip(a, b)):
        if x.tokens != y.tokens:
            ties = sum(abs(s - x.score) <= TIE for s in scores)
            assert ties > 2 or i == len(a) - 1 and abs(x.score - y.score) <= TIE, (i, a, b)


def our_logprobs(model, src_rows, tgt_rows) -> list[list[float]]:
    """Teacher-forced log p(token) of each target token and its EOS, from our model."""
    src = pad_sources(src_rows)
    tgt = pad_sources([[BOS_ID] + t for t in tgt_rows])
    with torch.no_grad():
        logp = model(src, tgt[:, :-1]).log_softmax(-1)  # (B,T,V)
    return [[logp[i, j, tok].item() for j, tok in enumerate(t + [EOS_ID])] for i, t in enumerate(tgt_rows)]


@pytest.mark.parametrize("config", CONFIGS)
def test_exported_network_computes_ours(config, tmp_path, cache):
    ckpt = random_checkpoint(tmp_path / "m.pt", cache, **CONFIGS[config])
    out = export_ct2(ckpt, tmp_path / "ct2", "float32")
    ours, theirs = load_engine("torch", ckpt), load_engine("ct2", out)
    tok = ours.tokenizer
    test = prepare_data(tiny_data_config(), cache, splits=("test",), tokenizer=tok).datasets["test"]
    src, tgt = [list(r)[:20] for r in test["src_ids"][:8]], [list(r)[:12] for r in test["tgt_ids"][:8]]

    scored = theirs.translator.score_batch([[tok.id_to_piece(i, "src") for i in r] for r in src],
                                           [[tok.id_to_piece(i, "tgt") for i in r] for r in tgt])  # fmt: skip
    for mine, result in zip(our_logprobs(ours.model, src, tgt), scored):
        assert result.log_probs == pytest.approx(mine, abs=2e-4)

    greedy = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=12)
    mine = [h[0].tokens for h in ours.translate_ids(src, greedy)]
    assert_greedy_agrees(ours.model, src, mine, [h[0].tokens for h in theirs.translate_ids(src, greedy)])


def test_trained_model_same_greedy_output(copy_checkpoint, tmp_path):
    ours = load_engine("torch", copy_checkpoint)
    theirs = load_engine("ct2", export_ct2(copy_checkpoint, tmp_path / "ct2", "float32"))
    rows = copy_rows(24, seed=1000)
    greedy = SearchConfig(beam_size=1, max_len_a=2.0, max_len_b=6)
    mine = [h[0].tokens for h in translate_ids(ours.model, rows, greedy)]
    found = [h[0].tokens for h in theirs.translate_ids(rows, greedy)]
    excused = assert_greedy_agrees(ours.model, rows, mine, found)
    assert excused <= 2  # a tie within rounding is rare: most sentences are compared token for token
    assert len({len(t) for t in mine}) >= 4  # outputs end on </s> at many lengths


@pytest.mark.parametrize("options", [dict(no_repeat_ngram_size=2), dict(repetition_penalty=1.8),
                                     dict(no_repeat_ngram_size=3, repetition_penalty=1.3, repeat_guard=2)],
                         ids=["ngram2", "penalty", "all"])  # fmt: skip
def test_repetition_options_mean_the_same_in_both_engines(copy_checkpoint, tmp_path, options):
    """CTranslate2's no_repeat_ngram_size and repetition_penalty are ours (greedy: the same tokens), and its
    cut at repeat_guard copies is where our guard ends a greedy hypothesis."""
    ours = load_engine("torch", copy_checkpoint)
    theirs = load_engine("ct2", export_ct2(copy_checkpoint, tmp_path / "ct2", "float32"))
    rows = copy_rows(24, seed=1001)
    greedy = SearchConfig(strategy="greedy", nbest=1, max_len_a=2.0, max_len_b=6, **options)
    mine = [h[0].tokens for h in ours.translate_ids(rows, greedy)]
    assert [h[0].tokens for h in theirs.translate_ids(rows, greedy)] == mine
    plain = [h[0].tokens for h in ours.translate_ids(rows, SearchConfig(strategy="greedy", nbest=1,
                                                                        max_len_a=2.0, max_len_b=6))]
    assert mine != plain  # the options changed something on this model


def test_ct2_samples_and_refuses_a_glossary(copy_checkpoint, tmp_path):
    theirs = load_engine("ct2", export_ct2(copy_checkpoint, tmp_path / "ct2", "float32"))
    rows = copy_rows(8, seed=1002)
    search = SearchConfig(strategy="sample", nbest=1, sampling_temperature=3.0, seed=4, max_len_a=0.0,
                          max_len_b=6)  # fmt: skip
    greedy = SearchConfig(strategy="greedy", nbest=1, max_len_a=0.0, max_len_b=6)
    sampled = [h[0].tokens for h in theirs.translate_ids(rows, search)]
    assert sampled != [h[0].tokens for h in theirs.translate_ids(rows, greedy)]
    assert all(len(t) <= 6 for t in sampled)  # the length limit holds
    with pytest.raises(EngineError, match="no lexically constrained search"):
        theirs.translate_ids(rows, SearchConfig(), constraints=[[[5]]] + [[]] * 7)


def beam_to_the_limit(model, row, beam_size, alpha, limit):
    """Reference for the CT2 engine's beam search: K beams decoded to the length limit, every hypothesis that
    ends on the way kept (at the last step each of the K best candidates ends, </s> or not), ranked by our
    GNMT score. Each step: the 2K best candidates; </s> among the K best ends a hypothesis; the first K
    candidates that are not </s> live on."""
    K = beam_size
    state = model.reorder_state(model.encode(pad_sources([row])), torch.zeros(K, dtype=torch.long))
    scores = torch.full((K,), float("-inf"))
    scores[0] = 0.0
    history, tokens, ended = [[] for _ in range(K)], bos(K, "cpu"), []
    for t in range(limit):
        logits, state = model.step(tokens, state)
        logp = mask_specials(logits.float()).log_softmax(-1)  # (K, V)
        top, idx = (scores[:, None] + logp).view(-1).topk(2 * K)  # (2K,)
        beams, toks = (idx // logp.size(1)).tolist(), (idx % logp.size(1)).tolist()
        live = []
        for j in range(2 * K):
            if j < K and (toks[j] == EOS_ID or t == limit - 1):
                ids = history[beams[j]] + ([] if toks[j] == EOS_ID else [toks[j]])
                raw = top[j].item()
                ended.append(Hypothesis(ids, raw / length_penalty(len(ids) + 1, alpha), raw))
            elif toks[j] != EOS_ID and len(live) < K:
                live.append(j)
        history = [history[beams[j]] + [toks[j]] for j in live]
        scores, tokens = top[live], torch.tensor([toks[j] for j in live])
        state = model.reorder_state(state, torch.tensor([beams[j] for j in live]))
    return sorted(ended, key=lambda h: -h.score)


@pytest.mark.parametrize("alpha,nbest", [(0.6, 4), (0.0, 2), (1.0, 1)])
def test_trained_model_beam4_nbest_lists(copy_checkpoint, tmp_path, alpha, nbest):
    """The CT2 engine's n-best lists are the reference's (beam_to_the_limit) on every sentence, and our own
    beam search's (which stops once no live beam can beat its nbest-th ended hypothesis) wherever no
    hypothesis reaches the limit (ours forces </s> there, CTranslate2 stops without it)."""
    ours = load_engine("torch", copy_checkpoint)
    exported = export_ct2(copy_checkpoint, tmp_path / "ct2", "float32")
    theirs = load_engine("ct2", exported, ct2_stopping="exact")
    rows = copy_rows(24, seed=1000)
    beam = SearchConfig(beam_size=4, nbest=nbest, alpha=alpha, max_len_a=2.0, max_len_b=6,
                          **REPETITION_OFF)  # CTranslate2 has no repeat_guard in beam search
    mine, found = translate_ids(ours.model, rows, beam), theirs.translate_ids(rows, beam)
    compared = 0
    for row, a, b in zip(rows, mine, found):
        limit = math.floor(2.0 * (len(row) + 1) + 6)
        with torch.no_grad():
            ref = beam_to_the_limit(ours.model, row, 4, alpha, limit)[:nbest]
        assert_nbest_agrees(b, ref)
        if any(len(h.tokens) >= limit for h in a + b):
            continue
        compared += 1  # ours stopped at its bound: nothing found later can rank above its n-best
        assert_nbest_agrees(a, b)
    assert compared >= len(rows) // 2  # the bound is exercised on most sentences, not on a few
    assert len({len(h.tokens) for a in found for h in a}) >= 4  # hypotheses end at many lengths


def test_native_stopping_is_ctranslate2s_own_rule_and_never_beats_exact(copy_checkpoint, tmp_path):
    """"native" stops once K hypotheses ended (fast, CTranslate2's rule): its best is never better than
    "exact" (which searches to the bound), its lists are ranked by our GNMT score, and most outputs agree."""
    out = export_ct2(copy_checkpoint, tmp_path / "ct2", "float32")
    native, exact = load_engine("ct2", out), load_engine("ct2", out, ct2_stopping="exact")
    rows = copy_rows(24, seed=1000)
    beam = SearchConfig(beam_size=4, nbest=2, alpha=0.6, max_len_a=2.0, max_len_b=6)
    fast, full = native.translate_ids(rows, beam), exact.translate_ids(rows, beam)
    for a, b in zip(fast, full):
        assert len(a) == 2 and a[0].score >= a[1].score
        assert a[0].score <= b[0].score + 1e-4
    assert sum(a[0].tokens == b[0].tokens for a, b in zip(fast, full)) >= len(rows) // 2
    with pytest.raises(EngineError, match="--ct2-stopping"):
        load_engine("ct2", out, ct2_stopping="sometimes")


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_k_ended_is_ctranslate2s_native_search(copy_checkpoint, tmp_path, alpha):
    """SearchConfig.stopping k_ended in our beam search is CTranslate2's own algorithm (patience 1): the same
    n-best lists wherever no hypothesis reaches the length limit (ours forces </s> there, CTranslate2 stops
    without it); CTranslate2 runs it whatever --ct2-stopping says."""
    ours = load_engine("torch", copy_checkpoint)
    out = export_ct2(copy_checkpoint, tmp_path / "ct2", "float32")
    rows = copy_rows(24, seed=1000)
    beam = SearchConfig(beam_size=4, nbest=2, alpha=alpha, max_len_a=2.0, max_len_b=6, stopping="k_ended",
                        **REPETITION_OFF)  # fmt: skip
    mine = translate_ids(ours.model, rows, beam)
    native, exact = (load_engine("ct2", out, ct2_stopping=s).translate_ids(rows, beam) for s in CT2_STOPPING)
    compared = 0
    for row, a, b, c in zip(rows, mine, native, exact):
        assert [h.tokens for h in b] == [h.tokens for h in c]  # k_ended maps to patience 1 in either mode
        if any(len(h.tokens) >= math.floor(2.0 * (len(row) + 1) + 6) for h in a + b):
            continue
        compared += 1
        assert_nbest_agrees(a, b)
    assert compared >= len(rows) // 2


# What each export runs as on this CPU (CTranslate2's documented fallbacks, "Implicit type conversion on
# load"): int16 only with Intel MKL (Intel CPUs, or CT2_USE_MKL=1 on another x86 CPU), else int8; float16
# only where get_supported_compute_types says so, else float32. On the CPU "int8" is int8_float32.
def expected_compute_type(quantization: str, supported: set[str]) -> str:
    if quantization in ("int8", "int8_float32"):
        return "int8_float32"
    if quantization == "int16" and "int16" not in supported:
        return "int8_float32"
    if quantization == "float16" and "float16" not in supported:
        return "float32"
    return quantization


def int8_has_vnni() -> bool:
    """Whether CTranslate2's int8 GEMM (oneDNN or MKL) gets VNNI's exact u8 x s8 -> s32 dot products. Without
    them it multiplies pairs into saturating int16 sums (oneDNN's and MKL's documented caveat for AVX2 and
    AVX-512 without VNNI); ONEDNN_MAX_CPU_ISA below a *_VNNI level takes VNNI away on any CPU."""
    from translate.machine import cpu_flags

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    capped = isa not in ("ALL", "DEFAULT") and "VNNI" not in isa and "BF16" not in isa and "AMX" not in isa
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags()) and not capped


def logprob_tolerance(quantization: str, runs: str) -> float | None:
    """Largest |CTranslate2 - ours| teacher-forced log-probability an export may show, from the rounding its
    compute type keeps (about 3x what this model shows on an AVX-512 VNNI CPU); None: no per-token bound."""
    if runs == "float32":
        return 2e-4 if quantization == "float32" else 0.03  # float16 weights (2^-11 relative) in float32
    if runs in ("float16", "int16"):
        return 0.05
    return 0.2 if int8_has_vnni() else None  # int8 without VNNI: saturating pair sums, see int8_has_vnni


def test_quantized_exports_run_as_documented_and_stay_close(copy_checkpoint, tmp_path, monkeypatch, caplog):
    """Each export runs as the compute type CTranslate2 documents for this CPU (int16 falls back to int8 off
    Intel MKL, float16 to float32 without float16 arithmetic); the engine reports it and warns once when it
    differs from the export. CTranslate2's teacher-forced log-probabilities stay within that compute type's
    tolerance of ours, so its greedy output can leave ours only where our model's two choices are within
    twice the tolerance; and a file is smaller the fewer bits it keeps."""
    monkeypatch.setattr(ct2_engine, "_warned", set())  # the warning is once per process: count it afresh
    supported = set(ct2.get_supported_compute_types("cpu"))
    rows = copy_rows(48, seed=2000)
    greedy = SearchConfig(beam_size=1, max_len_a=2.0, max_len_b=6)
    ours = load_engine("torch", copy_checkpoint)
    ref = [h[0].tokens for h in ours.translate_ids(rows, greedy)]
    tok = ours.tokenizer
    mine = our_logprobs(ours.model, rows, ref)
    sizes = {}
    for q in ("int8", "int8_float32", "int16", "float16", "float32"):
        out = export_ct2(copy_checkpoint, tmp_path / q, q)
        caplog.clear()
        with caplog.at_level("WARNING", logger=ct2_engine.__name__):
            engine, again = load_engine("ct2", out), load_engine("ct2", out)
        runs = expected_compute_type(q, supported)
        assert engine.info["quantization"] == q
        assert engine.info["compute_type"] == runs == again.info["compute_type"], q
        warnings = [r.getMessage() for r in caplog.records if r.name == ct2_engine.__name__]
        if runs_as_exported(q, runs):
            assert warnings == [] and "runs" not in engine.describe()
        else:  # one warning for the two loads, naming both types
            assert len(warnings) == 1 and f"exported as {q}, but CTranslate2 runs it as {runs}" in warnings[0]
            assert f"({q}, runs {runs})" in engine.describe()
        pieces = [[tok.id_to_piece(i, "src") for i in r] for r in rows]
        scored = engine.translator.score_batch(pieces, [[tok.id_to_piece(i, "tgt") for i in r] for r in ref])
        errors = [abs(a - b) for m, r in zip(mine, scored) for a, b in zip(m, r.log_probs)]
        tolerance = logprob_tolerance(q, runs)
        got = [h[0].tokens for h in engine.translate_ids(rows, greedy)]
        if tolerance is None:  # still our network: a wrong weight moves log-probabilities by nats, everywhere
            assert sum(errors) / len(errors) <= 0.5, q
        else:
            assert max(errors) <= tolerance, q
            assert_greedy_agrees(ours.model, rows, ref, got, margin=2 * tolerance)
        sizes[q] = (out / "model.bin").stat().st_size
    assert sizes["int8"] < sizes["int16"] < sizes["float32"] and sizes["float16"] < sizes["float32"]


def test_export_writes_a_complete_directory_atomically(copy_checkpoint, tmp_path, monkeypatch):
    out = export_ct2(copy_checkpoint, tmp_path / "m", "int8")
    names = {p.name for p in out.iterdir()}
    expected = {"model.bin", "config.json", "shared_vocabulary.json", "sentencepiece.model", "translate.json"}
    assert expected <= names
    with pytest.raises(ExportError, match=r"already exists \(use --force"):
        export_ct2(copy_checkpoint, out, "float32")
    before = (out / "model.bin").read_bytes()

    def broken_save(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(type(transformer_spec(load_engine("torch", copy_checkpoint).model, "x")), "save",
                        broken_save)  # fmt: skip
    with pytest.raises(OSError, match="disk full"):
        export_ct2(copy_checkpoint, out, "float32", force=True)
    assert (out / "model.bin").read_bytes() == before  # the old export is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # and no temporary directory is left
    monkeypatch.undo()
    export_ct2(copy_checkpoint, out, "float32", force=True)
    assert (out / "model.bin").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("name", ["rnnsearch", "rnnencdec"])
def test_rnn_models_are_refused_with_a_pointer_to_dynamic_int8(name, tmp_path, cache):
    ckpt = random_checkpoint(tmp_path / "m.pt", cache, name=name)
    with pytest.raises(ExportError) as e:
        export_ct2(ckpt, tmp_path / "ct2", "int8")
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{ckpt}: ")
    assert "declares no CTranslate2 spec" in message and "translate --quantize int8" in message
    assert not (tmp_path / "ct2").exists()


def test_the_engines_are_engines(copy_checkpoint, tmp_path):
    """Both engines have the declared Engine call shape: every attribute, and translate_ids' parameters."""
    import inspect

    from translate.engines import Engine, load_engine
    from translate.engines.ct2 import CT2Engine
    from translate.engines.pytorch import TorchEngine

    exported = export_ct2(copy_checkpoint, tmp_path / "m", "float32")
    ours, theirs = load_engine("torch", copy_checkpoint), load_engine("ct2", exported)
    assert isinstance(ours, Engine) and isinstance(theirs, Engine)
    assert ours.model is not None and theirs.model is None  # the service asks the attribute, not the class
    shape = inspect.signature(Engine.translate_ids).parameters
    for cls in (TorchEngine, CT2Engine):
        assert inspect.signature(cls.translate_ids).parameters.keys() == shape.keys(), cls.__name__


def test_what_the_spec_cannot_hold_is_refused_in_one_line(copy_checkpoint):
    model = load_engine("torch", copy_checkpoint).model
    model.extra_gate = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ExportError, match=r"^ckpt: parameter extra_gate has no place in a TransformerSpec$"):
        transformer_spec(model, "ckpt")
    del model.extra_gate
    model.decoder_layers[0].norm2.eps = 1e-6
    from translate.engines.ct2_export import layer_norm_epsilon

    with pytest.raises(ExportError, match=r"^ckpt: layer norms with epsilons"):
        layer_norm_epsilon(model, "ckpt")
    with pytest.raises(ExportError, match=r"--quantization int4: expected one of int8\|int8_float32"):
        export_ct2(copy_checkpoint, "unused", "int4")


def test_engine_errors_are_one_line(tmp_path):
    with pytest.raises(EngineError, match=f"^{tmp_path / 'none'}: no such model directory$"):
        CT2Engine(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EngineError, match="no translate.json: not a directory written by `translate export`"):
        CT2Engine(tmp_path / "empty")
    with pytest.raises(EngineError, match="--quantize applies to --engine torch"):
        load_engine("ct2", tmp_path / "empty", quantize="int8")


def test_cli_export_then_translate_with_ct2(copy_checkpoint, tmp_path, capsys):
    from translate.cli import main

    out = tmp_path / "exports" / "ct2"
    assert main(["export", str(copy_checkpoint), "--quantization", "float32", "-o", str(out)]) == 0
    assert (out / "translate.json").is_file()
    capsys.readouterr()
    assert main(["export", str(copy_checkpoint), "--quantization", "int16", "-o", str(tmp_path / "i16")]) == 0
    said = capsys.readouterr().err.strip().splitlines()[-1]
    if "int16" in ct2.get_supported_compute_types("cpu"):  # Intel MKL: int16 runs as int16, nothing to say
        assert said.endswith(f"(int16) from {copy_checkpoint}")
    else:  # the export says what the file becomes on this CPU
        assert said.endswith("; CTranslate2 runs it as int8_float32 on this CPU "
                             "(see translate/engines/README.md)")  # fmt: skip
    assert main(["export", str(copy_checkpoint), "-o", str(out)]) == 2  # exists, no --force
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"translate export: error: {out}: already exists (use --force to replace it)"
    )
    lines = ["Dios es amor.", "En el principio creó Dios los cielos y la tierra."]
    fast = ["--beam", "1", "--max-len-a", "0", "--max-len-b", "8"]
    assert main(["-c", str(copy_checkpoint), *lines, *fast]) == 0
    ours = capsys.readouterr().out
    assert main(["--engine", "ct2", "--model-dir", str(out), *lines, *fast]) == 0
    assert capsys.readouterr().out == ours and len(ours.splitlines()) == 2
    assert main(["--quantize", "int8", "-c", str(copy_checkpoint), *lines, *fast]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    for bad in (["--engine", "ct2"], ["--engine", "ct2", "--model-dir", str(out), "--quantize", "int8"],
                ["--model-dir", str(out)]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            main([*bad, "hola"])
        assert e.value.code == 2
    assert main(["--engine", "ct2", "--model-dir", str(tmp_path / "nothing"), "hola"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"translate: error: {tmp_path / 'nothing'}: no such model directory"
    )


def test_cli_export_refuses_an_rnn_in_one_line(tmp_path, cache, capsys):
    from translate.cli import main

    ckpt = random_checkpoint(tmp_path / "m.pt", cache, name="rnnencdec")
    capsys.readouterr()
    assert main(["export", str(ckpt), "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("translate export: error: ") and "--quantize int8" in err[0]


def test_evaluator_runs_the_ct2_engine(copy_checkpoint, tmp_path, cache):
    from translate.evaluation.config import EvalSettings
    from translate.evaluation.evaluator import evaluate_checkpoints
    from translate.metrics.by_length import Bootstrap

    out = export_ct2(copy_checkpoint, tmp_path / "ct2", "float32")
    search = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=6)
    base = dict(cache_dir=str(cache), device="cpu", search=search, bootstrap=Bootstrap(resamples=10),
                progress=False)  # fmt: skip
    ours = evaluate_checkpoints([copy_checkpoint], tmp_path / "ours", EvalSettings(**base))
    theirs = evaluate_checkpoints([out], tmp_path / "theirs", EvalSettings(**base, engine="ct2"))
    a, b = ours["models"][0], theirs["models"][0]
    assert b["label"] == "Transformer-ct2" and b["engine"] == "ct2" and b["quantization"] == "float32"
    assert b["alignments"] == [] and a["alignments"]  # CTranslate2's attention is not drawn
    hyps = [(tmp_path / d / m["hypotheses"]).read_text() for d, m in (("ours", a), ("theirs", b))]
    assert hyps[0] == hyps[1]
    assert b["bleu"] == a["bleu"] and b["parameters"] == a["parameters"] and b["step"] == a["step"]
