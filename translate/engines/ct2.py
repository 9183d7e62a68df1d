"""Translate with a CTranslate2 model directory written by `translate export`: ids in, hypotheses out.

CT2Engine.translate_ids has the shape of translate.search.translate_ids (source id lists without EOS ->
per sentence its n-best Hypothesis list, input order), so the CLI, the evaluator, the benchmark and a
server call either engine alike. SearchConfig maps onto CTranslate2's options so that the same settings
run the same search:

| SearchConfig | CTranslate2 translate_batch                                                            |
|--------------|----------------------------------------------------------------------------------------|
| beam_size 1  | beam_size=1: greedy, the same tokens as ours                                           |
| beam_size K  | beam_size=K: the same beam (the 2K best candidates; an EOS among the K best ends a     |
|              | hypothesis, the best non-EOS candidates refill the beam)                               |
| stopping     | SearchConfig.stopping k_ended is CTranslate2's own rule: patience 1, num_hypotheses K, |
| k_ended      | ranked by GNMT below (the same algorithm as ours, whatever --ct2-stopping says)        |
| stopping     | --ct2-stopping picks how CTranslate2 runs our exact bound, which it lacks. "native"    |
| exact        | (default): its own rule, as for k_ended: fast, a shorter search than ours. "exact":    |
|              | ours stops a sentence once no live beam can beat its nbest-th finished hypothesis;     |
|              | patience = limit + 1 and num_hypotheses = K * (limit + 1) keep CTranslate2 searching   |
|              | to the length limit and return every hypothesis it ended; the bound says none found    |
|              | after our stop can rank above our n-best, so the lists agree, at 3-5x the cost (tests  |
|              | use it)                                                                                |
| alpha (GNMT) | CTranslate2 only divides by length**penalty: we pass 0 (raw log-probabilities back)    |
|              | and rank by ((5 + L) / 6) ** alpha ourselves, L = tokens + EOS (return_end_token)      |
| nbest        | the first nbest of that ranking                                                        |
| max_len_a/b  | max_decoding_length = floor(a * (source + EOS) + b); CTranslate2 takes one limit per   |
|              | call: beam, one call per group of sentences sharing a limit; greedy, chunks decoded to |
|              | their largest limit, each output cut to its own (the same tokens)                      |
| (always)     | <pad> and <s> never generated (suppress_sequences); </s> ends each source              |
|              | (add_source_eos in the model's config); sources cut to the positions table             |
| batch_tokens | max_batch_size in tokens                                                               |
| strategy     | greedy: beam_size=1; sample: beam_size=1 with sampling_topk, sampling_topp and         |
|   + sampling | sampling_temperature (the same names and meanings); seed: ctranslate2.set_random_seed  |
|              | before the call, which seeds only the generators of worker threads started after it:   |
|              | CTranslate2's samples are not reproducible from the seed within one process (ours are, |
|              | per sentence), and its draws are its own, never the same as ours                       |
| no_repeat_   | no_repeat_ngram_size and repetition_penalty: the same names and meanings (greedy gives |
| ngram_size,  | the same tokens as ours, tests/engines/test_ct2.py)                                    |
| repetition_  |                                                                                        |
| penalty      |                                                                                        |
| repeat_guard | CTranslate2 has none: each hypothesis is cut after its first run of repeat_guard copies |
|              | of a 1-4-gram (the tokens ours ends with for greedy and sampling; for beam search ours |
|              | ranks the ended beam, CTranslate2 the uncut one)                                       |
| constraints  | CTranslate2 has no lexically constrained search: a glossary is refused (EngineError)   |

What cannot be the same, and only matters when a hypothesis reaches the length limit: ours then forces </s>
and charges its log-probability; CTranslate2 stops it without </s> and ranks it without that term. Cost of
"exact": CTranslate2 decodes every sentence to its limit (no bound to stop earlier), ours stops at the bound.
With a sinusoidal model ours has no target limit; here the positions table (model.max_positions) caps it.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm import tqdm

from translate.data.vocab import BOS_PIECE, EOS_PIECE, PAD_PIECE
from translate.engines import CT2_STOPPING
from translate.engines.ct2_export import META_FILE, META_VERSION, read_tokenizer
from translate.engines.errors import EngineError
from translate.search.beam import Hypothesis, length_penalty
from translate.search.config import SearchConfig
from translate.search.repetition import cut_at_repeats
from translate.search.stepper import length_limits

log = logging.getLogger(__name__)


STOPPING = CT2_STOPPING

# On the CPU, CTranslate2's "int8" is int8 weights with float32 activations: the same as int8_float32.
SAME_COMPUTE = {("int8", "int8_float32"), ("int8_float32", "int8")}
_warned: set[tuple[str, str, str]] = set()


def runs_as_exported(quantization: str, compute_type: str) -> bool:
    """Whether CTranslate2's compute type (Translator.compute_type) is what the export was quantized to."""
    return quantization == compute_type or (quantization, compute_type) in SAME_COMPUTE


def warn_fallback(path: Path, quantization: str, compute_type: str, device: str) -> None:
    """One warning per (export type, compute type, device) in a process when CTranslate2 fell back."""
    key = (quantization, compute_type, device)
    if runs_as_exported(quantization, compute_type) or key in _warned:
        return
    _warned.add(key)
    log.warning("%s: exported as %s, but CTranslate2 runs it as %s on this %s (%s is not supported here: see "
                "translate/engines/README.md)", path, quantization, compute_type, device, quantization)


def ct2_options(search: SearchConfig, limit: int, stopping: str = STOPPING[0]) -> dict:
    """translate_batch keyword arguments for one group of sentences sharing the length limit `limit`."""
    options = dict(
        max_decoding_length=limit, min_decoding_length=0, max_input_length=0, return_end_token=True,
        suppress_sequences=[[PAD_PIECE], [BOS_PIECE]], max_batch_size=search.batch_tokens,
        batch_type="tokens",
    )  # fmt: skip
    options.update(repetition_penalty=search.repetition_penalty,
                   no_repeat_ngram_size=search.no_repeat_ngram_size)  # fmt: skip
    if search.greedy:
        return {**options, "beam_size": 1}
    if search.strategy == "sample":
        return {**options, "beam_size": 1, "sampling_topk": search.sampling_topk,
                "sampling_topp": search.sampling_topp, "sampling_temperature": search.sampling_temperature}
    if stopping == "native" or search.stopping == "k_ended":  # stop once K hypotheses ended; all K come back
        return {**options, "beam_size": search.beam_size, "patience": 1.0, "num_hypotheses": search.beam_size,
                "length_penalty": 0.0, "return_scores": True}  # fmt: skip
    ended = search.beam_size * (limit + 1)  # more than can end before the limit: search on, return them all
    return {**options, "beam_size": search.beam_size, "patience": limit + 1.0, "num_hypotheses": ended,
            "length_penalty": 0.0, "return_scores": True}  # fmt: skip


def read_meta(model_dir: Path) -> dict:
    if not model_dir.is_dir():
        raise EngineError(f"{model_dir}: no such model directory")
    try:
        meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EngineError(
            f"{model_dir}: no {META_FILE}: not a directory written by `translate export`"
        ) from None
    except (OSError, ValueError) as e:
        raise EngineError(f"{model_dir}/{META_FILE}: unreadable ({e})") from None
    if meta.get("format") != "ct2" or meta.get("version") != META_VERSION:
        raise EngineError(f"{model_dir}/{META_FILE}: not a version-{META_VERSION} ct2 export")
    return meta


def call_groups(limits: list[int], greedy: bool, chunk: int = 256) -> list[list[int]]:
    """Sentence indices per translate_batch call, longest limits first. Beam: one call per limit (it shapes
    the search). Greedy: chunks of similar limits, decoded to the chunk's largest and each output then cut to
    its own limit: the same tokens as stopping there, without splitting the batches."""
    if greedy:
        order = sorted(range(len(limits)), key=lambda i: -limits[i])
        return [order[i : i + chunk] for i in range(0, len(order), chunk)]
    groups: dict[int, list[int]] = defaultdict(list)
    for i, limit in enumerate(limits):
        groups[limit].append(i)
    return [groups[limit] for limit in sorted(groups, reverse=True)]


class CT2Engine:
    """A CTranslate2 Translator plus the SentencePiece model(s) exported beside it."""

    name = "ct2"
    model = None  # no PyTorch model: no alignments, and the service batches it statically

    def __init__(
        self, model_dir: str | Path, *, device: str | torch.device = "cpu", threads: int = 0,
        stopping: str = STOPPING[0],
    ):
        if stopping not in STOPPING:
            raise EngineError(f"--ct2-stopping {stopping}: expected one of {'|'.join(STOPPING)}")
        self.stopping = stopping
        self.path = Path(model_dir)
        meta = read_meta(self.path)
        try:
            import ctranslate2
        except ImportError:
            raise EngineError("--engine ct2 needs ctranslate2: pip install -e '.[ct2]'") from None
        tok = meta["tokenizer"]
        try:
            self.tokenizer = read_tokenizer(self.path, tok)
            ct2_device = "cuda" if torch.device(device).type == "cuda" else "cpu"
            self.translator = ctranslate2.Translator(
                str(self.path), device=ct2_device, intra_threads=threads or torch.get_num_threads(),
                inter_threads=1,
            )  # fmt: skip
        except (OSError, RuntimeError, ValueError) as e:
            raise EngineError(f"{self.path}: cannot load ({str(e).strip().splitlines()[0]})") from None
        self.meta = meta
        self.data_config = meta.get("data")
        self.source_limit = int(meta["max_positions"]) - 1  # one position for </s>
        self.target_limit = int(meta["max_positions"]) - 1  # as ours for learned positions
        tok = self.tokenizer
        self._src_pieces = [tok.id_to_piece(i, "src") for i in range(tok.src_vocab_size)]
        self._tgt_ids = {tok.id_to_piece(i, "tgt"): i for i in range(tok.tgt_vocab_size)}
        self.info = {"model": meta["model"], "parameters": meta["parameters"], "step": meta.get("step"),
                     "target": str(meta["model_config"].get("_target_", "")),
                     "checkpoint": str(self.path), "quantization": meta["quantization"],
                     "compute_type": self.translator.compute_type}  # fmt: skip
        warn_fallback(self.path, meta["quantization"], self.translator.compute_type, ct2_device)

    def describe(self) -> str:
        m, runs = self.meta, self.info["compute_type"]
        quant = m["quantization"]
        if not runs_as_exported(quant, runs):
            quant += f", runs {runs}"
        return f"{self.path}: CTranslate2 {m['model']} ({quant}), exported from {m['checkpoint']}"

    def translate_ids(
        self, src_ids: Sequence[Sequence[int]], search: SearchConfig, *, progress: bool = False,
        desc: str = "translate", constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> list[list[Hypothesis]]:  # fmt: skip
        """Source id lists (no EOS) -> per sentence, in input order, its n-best hypotheses. CTranslate2 has
        no lexically constrained search: constraints (a glossary's terms) are refused."""
        if constraints is not None and any(constraints):
            raise EngineError("--engine ct2 has no lexically constrained search: "
                              "a glossary needs --engine torch")  # fmt: skip
        if search.strategy == "sample":
            import ctranslate2

            ctranslate2.set_random_seed(search.seed)
        too_long = sum(len(r) > self.source_limit for r in src_ids)
        if too_long:
            log.warning("%d source sentence(s) longer than %d tokens were truncated", too_long,
                        self.source_limit)  # fmt: skip
            src_ids = [r[: self.source_limit] for r in src_ids]
        lengths = torch.tensor([len(r) + 1 for r in src_ids], dtype=torch.long)
        limits = length_limits(lengths, search.max_len_a, search.max_len_b, self.target_limit).tolist()
        out: list[list[Hypothesis] | None] = [None] * len(src_ids)
        with tqdm(total=len(src_ids), desc=desc, unit="sent", disable=not progress, leave=False) as bar:
            for idx in call_groups(limits, search.width == 1):
                limit = max(limits[i] for i in idx)
                tokens = [[self._src_pieces[t] for t in src_ids[i]] for i in idx]
                results = self.translator.translate_batch(tokens, **ct2_options(search, limit, self.stopping))
                for i, r in zip(idx, results):
                    out[i] = self._hypotheses(r, search, limits[i])
                bar.update(len(idx))
        return out  # type: ignore[return-value]

    def _hypotheses(self, result, search: SearchConfig, limit: int) -> list[Hypothesis]:
        """CTranslate2's hypotheses (pieces, </s> kept when they ended on it) -> ours, ranked by GNMT;
        a greedy or sampled output is cut to the sentence's own limit, and after repeat_guard copies."""
        hyps = []
        scores = result.scores if result.scores else [math.nan] * len(result.hypotheses)
        for pieces, raw in zip(result.hypotheses, scores):  # length_penalty 0: the raw log-probability
            ids = [self._tgt_ids[p] for p in (pieces[:-1] if pieces and pieces[-1] == EOS_PIECE else pieces)]
            if search.repeat_guard:
                ids = cut_at_repeats(ids, search.repeat_guard)
            if search.width == 1:
                hyps.append(Hypothesis(ids[:limit], math.nan))
            else:
                hyps.append(Hypothesis(ids, raw / length_penalty(len(ids) + 1, search.alpha), raw))
        return sorted(hyps, key=lambda h: -h.score)[: search.nbest]
