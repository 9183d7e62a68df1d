"""Vocabulary shortlist (Marian's lexical shortlist, CTranslate2's vocabulary map): the output projection of a
decoding batch restricted to the target pieces its sources can plausibly produce.

  learn_shortlist(pairs, ...)   per source piece its C best target pieces by co-occurrence over the training
                                pairs (Dice coefficient over sentence pairs, as scripts/build_glossary.py),
                                plus the F most frequent target pieces (in most sentences' translations)
  Shortlist.vocab(src)          (Vs,) sorted target ids for a batch of sources: the union of their pieces'
                                candidates, the frequent pieces, EOS and UNK (and extra ids: glossary terms)
  save / load_shortlist         a small torch file (weights_only), checked against the model's tokenizer

The search (stepper.Stepper) asks the model for logits over these Vs ids only (Seq2Seq.restrict_output) and
puts them back into the full vocabulary with -inf elsewhere, so every search (greedy, beam, sampling,
repetition controls, glossaries) runs unchanged on the restricted distribution. Built by
scripts/build_shortlist.py; `translate --shortlist FILE`, bench_decode.py --shortlist FILE.

Legend: B batch, S source length, C candidates per source piece, F frequent pieces, Vs shortlist size.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from translate.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

FORMAT = "translate-shortlist/1"
ALWAYS = (EOS_ID, UNK_ID)  # in every shortlist (PAD and BOS are never generated anyway)


class ShortlistError(ValueError):
    """A shortlist file that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Shortlist:
    candidates: torch.Tensor  # (V_src, C) long: per source piece its candidate target ids, -1 = none
    frequent: torch.Tensor  # (F,) long: target ids in every shortlist
    tgt_vocab_size: int
    tokenizer: str = ""  # Tokenizer.fingerprint of the vocabulary it was learnt on ("" = unchecked)

    def vocab(self, src: torch.Tensor, extra: Iterable[int] = ()) -> torch.Tensor:
        """src (B, S) source ids (PAD allowed) -> (Vs,) sorted unique target ids, on src's device."""
        pieces = torch.unique(src.cpu())  # (P,) the batch's source pieces
        pieces = pieces[(pieces >= 0) & (pieces < self.candidates.size(0))]
        cand = self.candidates[pieces].flatten()  # (P * C,)
        ids = torch.cat([cand[cand >= 0], self.frequent, torch.tensor([*ALWAYS, *extra], dtype=torch.long)])
        return torch.unique(ids).to(src.device)  # sorted

    def state_dict(self) -> dict:
        return {"format": FORMAT, "candidates": self.candidates.to(torch.int32), "frequent": self.frequent,
                "tgt_vocab_size": self.tgt_vocab_size, "tokenizer": self.tokenizer}  # fmt: skip

    def save(self, path: str | Path) -> Path:
        from translate.files import write_atomic

        return write_atomic(path, lambda f: torch.save(self.state_dict(), f))


def load_shortlist(path: str | Path, tokenizer=None) -> Shortlist:
    """Read a shortlist file; with `tokenizer`, refuse one learnt on another vocabulary (one-line error)."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        raise ShortlistError(f"{path}: cannot read the shortlist ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ShortlistError(f"{path}: not a shortlist file ({FORMAT}, from scripts/build_shortlist.py)")
    sl = Shortlist(d["candidates"].long(), d["frequent"].long(), int(d["tgt_vocab_size"]),
                   str(d["tokenizer"]))  # fmt: skip
    if tokenizer is not None:
        if sl.tokenizer and sl.tokenizer != tokenizer.fingerprint:
            raise ShortlistError(f"{path}: learnt with tokenizer {sl.tokenizer}, the model's is "
                                 f"{tokenizer.fingerprint} (build one for this model's data)")  # fmt: skip
        sizes = (sl.candidates.size(0), sl.tgt_vocab_size)
        if sizes != (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size):
            raise ShortlistError(f"{path}: vocabularies {sizes[0]} -> {sizes[1]}, the model's "
                                 f"{tokenizer.src_vocab_size} -> {tokenizer.tgt_vocab_size}")  # fmt: skip
    return sl


def cooccurrence(pairs: Iterable[tuple[Sequence[int], Sequence[int]]], src_vocab: int, tgt_vocab: int):
    """-> (counts (V_src, V_tgt) int32: sentence pairs holding both pieces, src_df (V_src,), tgt_df (V_tgt,):
    sentences holding each piece). Dense: V_src * V_tgt * 4 bytes (256 MiB for 8k x 8k)."""
    counts = torch.zeros(src_vocab * tgt_vocab, dtype=torch.int32)
    src_df = torch.zeros(src_vocab, dtype=torch.long)
    tgt_df = torch.zeros(tgt_vocab, dtype=torch.long)
    keys: list[torch.Tensor] = []

    def flush() -> None:
        if keys:
            k = torch.cat(keys)
            counts.index_add_(0, k, torch.ones_like(k, dtype=torch.int32))
            keys.clear()

    for n, (s, t) in enumerate(pairs):
        su = torch.unique(torch.as_tensor(s, dtype=torch.long))  # (s,) the pair's distinct source pieces
        tu = torch.unique(torch.as_tensor(t, dtype=torch.long))  # (t,)
        src_df[su] += 1
        tgt_df[tu] += 1
        keys.append((su[:, None] * tgt_vocab + tu[None, :]).flatten())
        if n % 2000 == 1999:
            flush()
    flush()
    return counts.view(src_vocab, tgt_vocab), src_df, tgt_df


def learn_shortlist(
    pairs: Iterable[tuple[Sequence[int], Sequence[int]]], src_vocab: int, tgt_vocab: int, *,
    frequent: int = 100, per_source: int = 50, tokenizer: str = "",
) -> Shortlist:  # fmt: skip
    """Per source piece its `per_source` target pieces of highest Dice coefficient 2 c(s,t) / (c(s) + c(t))
    over the sentence pairs (pieces that never co-occur are left out), beside the `frequent` target pieces
    found in the most sentences (every shortlist holds those, so they are not counted as candidates)."""
    counts, src_df, tgt_df = cooccurrence(pairs, src_vocab, tgt_vocab)
    df = tgt_df.clone()
    df[[PAD_ID, BOS_ID]] = -1
    top = df.topk(min(frequent, tgt_vocab)).indices if frequent else torch.zeros(0, dtype=torch.long)
    top = top[df[top] > 0]
    skip = torch.zeros(tgt_vocab, dtype=torch.bool)
    skip[[PAD_ID, BOS_ID, *ALWAYS]] = True
    skip[top] = True
    C = min(per_source, tgt_vocab)
    candidates = torch.full((src_vocab, C), -1, dtype=torch.long)
    for lo in range(0, src_vocab, 512):  # (512, V_tgt) float rows at a time
        c = counts[lo : lo + 512].double()
        dice = 2 * c / (src_df[lo : lo + 512, None] + tgt_df[None, :]).clamp(min=1)
        dice[:, skip] = 0.0
        val, idx = dice.topk(C, dim=1)
        candidates[lo : lo + 512] = torch.where(val > 0, idx, -1)
    return Shortlist(candidates, top.sort().values, tgt_vocab, tokenizer)


def coverage(shortlist: Shortlist, pairs: Iterable[tuple[Sequence[int], Sequence[int]]]):
    """-> (share of reference target pieces inside their own sentence's shortlist, mean shortlist size): how
    much of what a translation needs the shortlist keeps (build_shortlist.py reports it on the dev split)."""
    hit = total = size = n = 0
    for s, t in pairs:
        vocab = shortlist.vocab(torch.as_tensor([list(s)], dtype=torch.long))
        ref = torch.as_tensor(list(t), dtype=torch.long)
        hit += int(torch.isin(ref, vocab).sum())
        total, size, n = total + ref.numel(), size + vocab.numel(), n + 1
    return hit / max(total, 1), size / max(n, 1)
