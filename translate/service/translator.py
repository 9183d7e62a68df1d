"""Translator: a checkpoint loaded once, text in and text out; the engine under the CLI and the server.

  plan(lines)           -> segment.Plan: the units (subword ids) to translate and where they go back
  translate(lines, ...) -> per line its n-best translations, decoded offline by translate_ids in token batches
  texts(plan, hyps, n)  -> the same from hypotheses found elsewhere (the server's model worker)

Legend: U units (sentences or parts of sentences), N n-best.
"""

from __future__ import annotations

from dataclasses import dataclass

from translate.models.checkpoint import load_model
from translate.search import Hypothesis, SearchConfig, source_limit, translate_ids
from translate.service.config import ServiceConfig
from translate.service.segment import Plan, plan


@dataclass
class Languages:
    src: str
    tgt: str


def checkpoint_languages(ckpt: dict) -> Languages:
    """The language pair a checkpoint was trained on (its data config); es -> en when it does not say."""
    data = (ckpt.get("config") or {}).get("data") or {}
    return Languages(str(data.get("src_lang") or "es"), str(data.get("tgt_lang") or "en"))


class Translator:
    def __init__(self, model, tokenizer, langs: Languages, service: ServiceConfig | None = None):
        service = service or ServiceConfig()
        self.model, self.tokenizer, self.langs = model, tokenizer, langs
        limit = source_limit(model)
        self.limit = service.max_src_len if limit is None else min(service.max_src_len, limit)

    @classmethod
    def load(cls, path, device: str = "cpu", service: ServiceConfig | None = None) -> Translator:
        """Raises CheckpointError (one line naming the path) for a missing or broken checkpoint."""
        model, tokenizer, ckpt = load_model(path, device)
        return cls(model, tokenizer, checkpoint_languages(ckpt), service)

    def plan(self, lines: list[str]) -> Plan:
        return plan(lines, self.tokenizer, self.langs.src, self.limit)

    def detokenize(self, hyp: Hypothesis) -> str:
        return self.tokenizer.decode(hyp.tokens, "tgt")

    def texts(self, p: Plan, hyps: list[list[Hypothesis]], nbest: int = 1) -> list[list[str]]:
        """Per line, `nbest` translations: the i-th joins every unit's i-th best (or its last, if fewer)."""
        per_unit = [[self.detokenize(h) for h in nb] for nb in hyps]  # (U, <=N)
        return [list(alt) for alt in zip(*(p.join([u[min(i, len(u) - 1)] for u in per_unit])
                                             for i in range(nbest)))]  # fmt: skip

    def translate(
        self, lines: list[str], search: SearchConfig, *, progress: bool = False, desc: str = "translate"
    ) -> list[list[str]]:
        """Lines -> per line its search.nbest translations (blank lines give empty strings)."""
        p = self.plan(lines)
        hyps = translate_ids(self.model, p.units, search, progress=progress, desc=desc)
        return self.texts(p, hyps, search.nbest)
