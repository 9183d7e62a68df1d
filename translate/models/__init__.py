"""The three translation models on one interface (interface.Seq2Seq), built from conf/model/*.yaml.

rnn_encdec.RNNencdec (Cho et al. 2014), rnn_search.RNNsearch (Bahdanau et al. 2014) and
transformer.Transformer (Vaswani et al. 2017); build.build_model builds one from a config's `_target_`
(only these classes: a checkpoint's config is untrusted), checkpoint.py saves and reloads it with its
tokenizer, and keeps and finds a run's checkpoint files (last, best, step-N).
"""

from translate.models.build import build_model
from translate.models.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from translate.models.interface import Seq2Seq

__all__ = ["CheckpointError", "Seq2Seq", "build_model", "load_checkpoint", "load_model", "save_checkpoint"]
