"""Translation as a service: text in, text out, for the `translate` CLI and `translate serve`.

segment.py cuts text into units (lines, sentences, parts of over-long sentences) and joins translations back;
translator.py holds a loaded checkpoint and decodes the units; config.py holds the serving defaults.
"""

from translate.service.config import ServerConfig, ServiceConfig
from translate.service.segment import Plan, plan, split_lines, split_sentences
from translate.service.translator import Languages, Translator, checkpoint_languages

__all__ = [
    "Languages",
    "Plan",
    "ServerConfig",
    "ServiceConfig",
    "Translator",
    "checkpoint_languages",
    "plan",
    "split_lines",
    "split_sentences",
]
