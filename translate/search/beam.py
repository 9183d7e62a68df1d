"""Batched beam search with the GNMT length penalty, n-best lists, and finished sentences leaving the batch.

Every sentence keeps K live beams in one (B*K)-row decoder state; after each step the state is reordered by
model.reorder_state (the KV cache follows its beams). A hypothesis ends when it picks EOS among the K best
candidates; a sentence is done once K hypotheses have ended ("every beam has ended") or all its beams hit the
length limit, and its rows then leave the batch.

Legend: B batch (live sentences), K beam size, S source length, T generated length, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from translate.data.vocab import EOS_ID
from translate.search.stepper import Stepper, bos, mask_specials, max_lengths, target_positions


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids without BOS/EOS
    score: float  # log-probability (EOS included) divided by the length penalty
    logprob: float = 0.0  # the raw log-probability


def length_penalty(length: int, alpha: float) -> float:
    """GNMT (Wu et al. 2016): lp(Y) = ((5 + |Y|) / 6) ** alpha; alpha = 0 ranks by raw log-probability."""
    return ((5.0 + length) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model,
    src: torch.Tensor,
    *,
    beam_size: int = 5,
    alpha: float = 0.6,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
    nbest: int = 1,
    use_cache: bool = True,
) -> list[list[Hypothesis]]:
    """src (B, S) -> per sentence its `nbest` best hypotheses, best first (score = logprob / lp)."""
    if beam_size < 1 or not 1 <= nbest <= beam_size:
        raise ValueError(f"need 1 <= nbest <= beam_size, got nbest={nbest} beam_size={beam_size}")
    K, dev = beam_size, src.device
    B = src.size(0)
    limit = max_lengths(src, max_len_a, max_len_b, target_positions(model))  # (B,)
    stepper = Stepper(model, src, use_cache=use_cache)
    stepper.reorder(torch.arange(B, device=dev).repeat_interleave(K))  # B rows -> B*K rows
    scores = torch.full((B, K), float("-inf"), device=dev)  # (B, K) raw log-probabilities of live beams
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first step does not pick duplicates
    history = torch.empty(B, K, 0, dtype=torch.long, device=dev)  # (B, K, T)
    sent = torch.arange(B, device=dev)  # (B,) original sentence of each live sentence
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    tokens = bos(B * K, dev)
    t = 0
    while sent.numel() > 0:
        Bl = sent.numel()
        logp = mask_specials(stepper.step(tokens).float()).log_softmax(-1)  # (Bl*K, V)
        V = logp.size(-1)
        logp = logp.view(Bl, K, V)
        at_limit = limit[sent] <= t  # (Bl,) these sentences may only end now
        if at_limit.any():
            eos_only = torch.full_like(logp[0, 0], float("-inf"))
            eos_only[EOS_ID] = 0.0
            logp = torch.where(at_limit[:, None, None], logp + eos_only, logp)
        cand = (scores[:, :, None] + logp).view(Bl, K * V)  # (Bl, K*V)
        top_scores, top_idx = cand.topk(2 * K, dim=-1)  # (Bl, 2K): at most K of them end, K stay alive
        top_beam, top_tok = top_idx // V, top_idx % V
        is_eos = top_tok == EOS_ID

        # Hypotheses that end among the K best candidates are final.
        rank = torch.arange(2 * K, device=dev)
        final = is_eos & (rank < K) & torch.isfinite(top_scores)  # (Bl, 2K)
        if final.any():
            lp = length_penalty(t + 1, alpha)
            raw_cpu, beam_cpu, hist_cpu, sent_cpu = (x.cpu() for x in (top_scores, top_beam, history, sent))
            for b, j in final.nonzero().tolist():  # one host copy per step, not one per hypothesis
                raw = raw_cpu[b, j].item()
                finished[int(sent_cpu[b])].append(
                    Hypothesis(hist_cpu[b, beam_cpu[b, j]].tolist(), raw / lp, raw)
                )

        # The K best candidates that do not end become the next beams.
        order = (rank + is_eos.long() * 2 * K).argsort(dim=-1)[:, :K]  # (Bl, K) non-EOS first, by rank
        beam_src = top_beam.gather(1, order)  # (Bl, K)
        scores = top_scores.gather(1, order)  # (Bl, K)
        new_tok = top_tok.gather(1, order)  # (Bl, K)
        history = history.gather(1, beam_src[:, :, None].expand(-1, -1, t))  # (Bl, K, T) follow the beams
        history = torch.cat([history, new_tok[:, :, None]], 2)  # (Bl, K, T+1)
        t += 1

        enough = torch.tensor([len(finished[s]) >= K for s in sent.tolist()], device=dev)  # (Bl,)
        done = enough | ~torch.isfinite(scores).any(1)  # (Bl,)
        keep = (~done).nonzero().squeeze(1)  # (Bl',)
        rows = (keep[:, None] * K + beam_src[keep]).reshape(-1)  # (Bl'*K,) state rows of the kept beams
        sent, scores, history, new_tok = sent[keep], scores[keep], history[keep], new_tok[keep]
        if keep.numel() > 0:
            stepper.reorder(rows)
        tokens = new_tok.reshape(-1)
    return [sorted(f, key=lambda h: -h.score)[:nbest] for f in finished]
