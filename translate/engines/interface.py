"""Engine: the call shape every decoding engine has (translate.engines: TorchEngine, CT2Engine), declared.

The service, the CLI, the evaluator and the benchmarks hold an Engine and use only what is written here:

  name                                       "torch" | "ct2"
  translate_ids(src_ids, search, *, progress, desc, constraints)
                                             -> per sentence its n-best Hypotheses (search.nbest);
                                             constraints: per sentence a glossary's target terms (an
                                             engine without constrained search refuses them)
  tokenizer                                  translate.data.tokenizer.Tokenizer: text <-> ids
  data_config                                the training data config (its languages), or None
  source_limit                               source subwords the model takes; None = any length
  info                                       provenance for reports: model, parameters, step, checkpoint,
                                             quantization, target
  model                                      the PyTorch Seq2Seq it decodes (alignments, continuous
                                             batching), or None (CTranslate2)
  describe()                                 one line for logs
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from translate.search.beam import Hypothesis
from translate.search.config import SearchConfig


@runtime_checkable
class Engine(Protocol):
    name: str
    tokenizer: Any
    data_config: dict | None
    source_limit: int | None
    info: dict
    model: Any  # translate.models.interface.Seq2Seq | None

    def translate_ids(
        self, src_ids: Sequence[Sequence[int]], search: SearchConfig, *, progress: bool = False,
        desc: str = "translate", constraints: Sequence[Sequence[Sequence[int]]] | None = None,
    ) -> list[list[Hypothesis]]: ...  # fmt: skip

    def describe(self) -> str: ...
