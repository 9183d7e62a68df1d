"""Our own engine: a checkpoint decoded by translate.search, in float32 or PyTorch dynamic int8.

TorchEngine.translate_ids is translate.search.translate_ids on the loaded model; the engine adds what the
CLI, the evaluator and the benchmark need beside it (tokenizer, data config, provenance, source limit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from translate.attention.backend import apply_verdict
from translate.data.vocab import EOS_ID
from translate.engines import QUANTIZE, EngineError
from translate.models.checkpoint import load_model
from translate.models.quantize import quantize_dynamic_int8
from translate.search import Hypothesis, SearchConfig, sequence_limit, translate_ids
from translate.search.shortlist import ShortlistError, load_shortlist

log = logging.getLogger(__name__)


class TorchEngine:
    name = "torch"

    def __init__(self, checkpoint: str | Path, *, device: str | torch.device = "cpu", quantize: str = "none",
                 shortlist: str | Path | None = None):  # fmt: skip
        if quantize not in QUANTIZE:
            raise EngineError(f"--quantize {quantize}: expected one of {'|'.join(QUANTIZE)}")
        if quantize == "int8" and torch.device(device).type != "cpu":
            raise EngineError(f"--quantize int8 runs on the CPU only, not on {device} (use --device cpu)")
        self.path = Path(checkpoint)
        self.model, self.tokenizer, self.ckpt = load_model(checkpoint, device)
        self.backend = apply_verdict(self.model, self.ckpt.get("attention_backend"), device)
        log.info("%s: attention backend %s", checkpoint, self.backend)
        self.parameters = self.model.num_parameters()
        if quantize == "int8":
            self.model = quantize_dynamic_int8(self.model)
        self.quantize = quantize
        try:  # a vocabulary shortlist (search/shortlist.py), checked against the model's tokenizer
            self.shortlist = load_shortlist(shortlist, self.tokenizer) if shortlist else None
        except ShortlistError as e:
            raise EngineError(f"--shortlist {e}") from None
        if self.shortlist is not None:  # refused now, not at the first sentence
            with torch.no_grad():
                probe = self.model.encode(torch.full((1, 1), EOS_ID, device=device))  # the smallest state
            if self.model.restrict_output(probe, torch.tensor([EOS_ID], device=device)) is None:
                raise EngineError(f"--shortlist: {type(self.model).__name__} cannot restrict its output "
                                  "projection (a shortlist serves the Transformer)")  # fmt: skip
        config = self.ckpt.get("config")
        self.data_config = config.get("data") if isinstance(config, dict) else None
        self.source_limit = sequence_limit(self.model)
        self.info = {"model": type(self.model).__name__, "parameters": self.parameters,
                     "target": str(self.ckpt["model_config"].get("_target_", "")),
                     "step": self.ckpt.get("step"), "checkpoint": str(checkpoint),
                     "quantization": quantize,
                     "shortlist": str(shortlist) if shortlist else None}  # fmt: skip

    def describe(self) -> str:
        int8 = " (dynamic int8)" if self.quantize == "int8" else ""
        shortlist = f", shortlist {self.info['shortlist']}" if self.shortlist is not None else ""
        return f"{self.path}: {self.model.describe()}{int8}{shortlist}"

    def translate_ids(
        self, src_ids: Sequence[Sequence[int]], search: SearchConfig, *, progress: bool = False,
        desc: str = "translate", constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> list[list[Hypothesis]]:  # fmt: skip
        """translate.search.translate_ids; constraints: per sentence a glossary's target terms."""
        return translate_ids(self.model, src_ids, search, progress=progress, desc=desc,
                             constraints=constraints, shortlist=self.shortlist)  # fmt: skip
