"""Translator: a decoding engine loaded once, text in and text out; what the CLI and the server run.

  plan(lines)           -> segment.Plan: the units (subword ids) to translate and where they go back
  translate(lines, ...) -> per line its n-best translations, the units decoded by the engine's translate_ids
                           (token batches; translate.engines: our search, int8, or CTranslate2)
  texts(plan, hyps, n)  -> the same from hypotheses found elsewhere (the server's model worker)

Legend: U units (sentences or parts of sentences), N n-best.
"""

from __future__ import annotations

from dataclasses import dataclass

from translate.data.lines import one_line
from translate.engines import load_engine
from translate.search import Hypothesis, SearchConfig, SearchError
from translate.search.glossary import Glossary
from translate.service.config import ServiceConfig
from translate.service.segment import Plan, plan


@dataclass
class Languages:
    src: str
    tgt: str


def data_languages(data_config: dict | None) -> Languages:
    """The language pair a model was trained on (its data config); es -> en when it does not say."""
    data = data_config if isinstance(data_config, dict) else {}
    return Languages(str(data.get("src_lang") or "es"), str(data.get("tgt_lang") or "en"))


class Translator:
    def __init__(self, engine, service: ServiceConfig | None = None, langs: Languages | None = None):
        """engine: a translate.engines engine (translate_ids, tokenizer, source_limit, data_config)."""
        service = service or ServiceConfig()
        self.engine, self.tokenizer = engine, engine.tokenizer
        self.langs = langs or data_languages(engine.data_config)
        limit = engine.source_limit
        self.limit = service.max_src_len if limit is None else min(service.max_src_len, limit)

    @classmethod
    def load(cls, path, device: str = "cpu", service: ServiceConfig | None = None, *, engine: str = "torch",
             quantize: str = "none", threads: int = 0) -> Translator:  # fmt: skip
        """Raises CheckpointError / EngineError (one line naming the path) for what cannot be loaded."""
        return cls(load_engine(engine, path, device=device, quantize=quantize, threads=threads), service)

    @property
    def model(self):
        """The PyTorch model (torch engine): what the server's worker decodes and draws alignments from;
        None for an engine without one (CTranslate2)."""
        return getattr(self.engine, "model", None)

    def describe(self) -> str:
        return self.engine.describe()

    def summary(self) -> str:
        """What the model is, without the server's file paths (for /v1/models)."""
        if self.model is not None:
            return self.model.describe()
        info = self.engine.info
        return f"CTranslate2 {info['model']}, {info['parameters']:,} parameters ({info['quantization']})"

    def plan(self, lines: list[str]) -> Plan:
        return plan(lines, self.tokenizer, self.langs.src, self.limit)

    def detokenize(self, hyp: Hypothesis) -> str:
        """One unit's translation, on one line (no newline or tab can break the line structure)."""
        return one_line(self.tokenizer.decode(hyp.tokens, "tgt"))

    def texts(self, p: Plan, hyps: list[list[Hypothesis]], nbest: int = 1) -> list[list[str]]:
        """Per line, `nbest` translations: the i-th joins every unit's i-th best (or its last, if fewer)."""
        per_unit = [[self.detokenize(h) for h in nb] for nb in hyps]  # (U, <=N)
        return [list(alt) for alt in zip(*(p.join([u[min(i, len(u) - 1)] for u in per_unit])
                                             for i in range(nbest)))]  # fmt: skip

    def translate(
        self, lines: list[str], search: SearchConfig, *, progress: bool = False, desc: str = "translate",
        first_line: int = 1, glossary: Glossary | None = None,
    ) -> list[list[str]]:  # fmt: skip
        """Lines -> per line its search.nbest translations (a line with nothing to translate gives "").
        glossary: its terms are produced in every unit whose source holds them (constrained beam search).

        Raises SearchError naming the lines (numbered from first_line) whose search found no hypothesis.
        """
        p = self.plan(lines)
        constraints = glossary.constraints(self.tokenizer, p.units) if glossary else None
        try:
            hyps = self.engine.translate_ids(p.units, search, progress=progress, desc=desc,
                                             constraints=constraints)  # fmt: skip
        except SearchError as e:  # unit indices -> the user's line numbers
            line_of = {u: n for n, sents in enumerate(p.layout) for sent in sents for u in sent}
            numbers = sorted({first_line + line_of[r] for r in e.rows})
            raise SearchError(numbers, "line") from None
        return self.texts(p, hyps, search.nbest)
