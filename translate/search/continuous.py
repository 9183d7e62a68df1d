"""Continuous batching (iteration-level scheduling, Orca, Yu et al. 2022; vLLM): one running batch that
sentences join and leave at every decoding step.

  add(key, ids, search=None)
                  a sentence waits; at the next step it is encoded and joins the running batch (up to the
                  token budget, search.batch_tokens source tokens), without waiting for the batch to finish;
                  its own search settings may differ from the decoder's in alpha and the length limit
                  (max_len_a, max_len_b): those are per sentence, like the step count;
  step()          admits waiting sentences, runs one decoding step for every running row, and returns the
                  sentences that finished (they leave the batch, and their cache blocks are freed); a
                  sentence that cannot be encoded does not join, and is listed in `failed` with its error
                  (the running batch goes on);
  cancel(keys)    drops sentences (waiting or running) whose client went away or whose deadline passed.

A decoder has one shape (shape_of: the strategy, beam size, nbest, token budget, and the sampling and
repetition settings): sentences of any alpha and length limit share its running batch. Several decoders (one
per shape) can share one BlockPool (`pool=`), so a server holds one pool per model whatever the requests ask
for.

Each sentence keeps its own step count, length limit and alpha, so greedy, sampling and beam search make
exactly the choices they make offline (decode's rule: one-hypothesis strategies through
sampling.token_chooser, beam search through the per-step functions of beam.py; the repetition controls on
each row's own tokens): the same
translations as translate_ids on the same sentences, whatever else shares the batch. Rows of a sentence are
contiguous (K rows for beam size K). The decoder state is the model's, joined by model.join_states and
reordered by model.reorder_state; with paged=True a Transformer keeps its self-attention keys/values in a
PagedKVCache on one BlockPool (joining, leaving and beam reordering move block ids, not keys/values).

Legend: B running sentences, K beam size (1 for greedy), N nbest, T tokens generated, V target vocabulary.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterable

import torch

from translate.attention.paged import BlockPool
from translate.data.vocab import EOS_ID, PAD_ID
from translate.search.beam import Hypothesis, beam_step, best_first, can_stop, first_scores, step_logp
from translate.search.config import SearchConfig
from translate.search.dataset import pad_sources
from translate.search.repetition import control_repetition, end_repeats
from translate.search.sampling import token_chooser
from translate.search.stepper import bos, length_limits, mask_specials, sequence_limit


def shape_of(search: SearchConfig) -> tuple:
    """What a ContinuousDecoder's running batch is built for: the strategy, (beam size, nbest, stopping rule,
    token budget), and the sampling and repetition settings its step applies to every row. Settings with the
    same shape share one decoder; alpha and the length limit are per sentence."""
    return (search.strategy, search.beam_size, search.nbest, search.stopping, search.batch_tokens,
            search.sampling_topk, search.sampling_topp, search.sampling_temperature, search.seed,
            search.no_repeat_ngram_size, search.repetition_penalty, search.repeat_guard)  # fmt: skip


class ContinuousDecoder:
    def __init__(self, model, search: SearchConfig, *, paged: bool = False, block_size: int = 16,
                 pool: BlockPool | None = None):  # fmt: skip
        """`pool`: the BlockPool to keep the paged cache in (shared with other decoders of the same model);
        paged=True without one makes this decoder's own (models with a self-attention KV cache)."""
        self.model, self.search = model, search
        self.device = next(model.parameters()).device
        self.K = search.width  # rows per sentence: 1 for greedy and sampling
        self.choose = token_chooser(search, self.device)  # K = 1: picks each row's next token
        if pool is None and paged:
            pool = model.new_block_pool(block_size)  # None: the model keeps no self-attention cache
        self.pool = pool
        self.max_src = sequence_limit(model)
        self.waiting: deque[tuple[Hashable, list[int], SearchConfig]] = deque()
        self.state = None  # the model's decoder state for B*K rows
        self.keys: list[Hashable] = []  # (B,) the running sentences
        self.src_tokens: list[int] = []  # (B,) source tokens (EOS included): the budget they use
        self.limit = torch.empty(0, dtype=torch.long, device=self.device)  # (B,) length limits
        self.alpha = torch.empty(0, dtype=torch.float64, device=self.device)  # (B,) length penalties
        self.steps = torch.empty(0, dtype=torch.long, device=self.device)  # (B,) tokens generated so far
        self.tokens = torch.empty(0, dtype=torch.long, device=self.device)  # (B*K,) the next input tokens
        self.out: list[list[int]] = []  # K = 1: (B,) tokens generated so far
        # beam search: live beams' raw log-probabilities, their tokens (row b valid up to steps[b]; K = 1
        # keeps them too when a repetition control needs them), and the hypotheses that ended
        self.scores = torch.empty(0, self.K, device=self.device)  # (B, K)
        self.best = torch.empty(0, search.ended_kept, device=self.device)  # (B, N) normalised, the best ended
        self.history = torch.zeros(0, self.K, 8, dtype=torch.long, device=self.device)  # (B, K, Tcap)
        self.finished: list[list[Hypothesis]] = []  # (B,)
        self.generated = 0  # target tokens produced (EOS included), for throughput figures
        self.admitted: list[Hashable] = []  # the sentences that joined at the last step
        self.failed: list[tuple[Hashable, Exception]] = []  # those that could not join it (encoding raised)

    # ------------------------------------------------------------------------------------------ queue

    def add(self, key: Hashable, ids: list[int], search: SearchConfig | None = None) -> None:
        """Queue one sentence with its search settings (default: the decoder's), of this decoder's shape."""
        search = self.search if search is None else search
        if shape_of(search) != shape_of(self.search):
            raise ValueError(f"search settings of shape {shape_of(search)} given to a decoder of shape "
                             f"{shape_of(self.search)} (beam size, nbest, token budget)")  # fmt: skip
        if self.max_src is not None and len(ids) > self.max_src:
            raise ValueError(f"source of {len(ids)} subwords is longer than the model's {self.max_src}")
        self.waiting.append((key, list(ids), search))

    def cancel(self, keys: Iterable[Hashable]) -> None:
        """Drop these sentences: waiting ones from the queue, running ones from the batch (now)."""
        keys = set(keys)
        self.waiting = deque(w for w in self.waiting if w[0] not in keys)
        keep = [i for i, k in enumerate(self.keys) if k not in keys]
        if len(keep) < len(self.keys):
            self._keep(torch.tensor(keep, dtype=torch.long, device=self.device))

    @property
    def running(self) -> int:
        return len(self.keys)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.keys)

    def kv_memory(self) -> tuple[int, int]:
        """(bytes allocated, bytes used) of the running rows' self-attention cache; (0, 0) without one."""
        return (0, 0) if self.state is None else self.model.kv_memory(self.state)

    def kv_blocks(self) -> tuple[int, int]:
        """(blocks in use, blocks allocated) of the paged pool; (0, 0) without one."""
        return (self.pool.in_use, self.pool.num_blocks) if self.pool is not None else (0, 0)

    # ------------------------------------------------------------------------------------------- step

    @torch.no_grad()
    def step(self) -> list[tuple[Hashable, list[Hypothesis]]]:
        """Admit, decode one token for every running row, and return the sentences that finished."""
        self.failed = []
        self.admitted = self._admit()
        if not self.keys:
            return []
        logits = self._model_step().float()  # (B*K, V)
        return self._one(logits) if self.K == 1 else self._beam(logits)

    def _model_step(self) -> torch.Tensor:
        logits, self.state = self.model.step(self.tokens, self.state)
        return logits

    def _one(self, logits: torch.Tensor) -> list[tuple[Hashable, list[Hypothesis]]]:
        """The choices of greedy.decode_loop (greedy or sampling), with one step count per sentence."""
        logits = mask_specials(logits)  # (B, V)
        if self.search.repetition:
            hist = self.history[:, 0, :]  # (B, Tcap), row b valid up to steps[b]
            logits = control_repetition(logits, hist, self.steps, self.search)
            logits = end_repeats(logits, hist, self.steps, self.search)
        nxt = self.choose(logits)  # (B,)
        nxt = torch.where(self.limit <= self.steps, torch.full_like(nxt, EOS_ID), nxt)  # length limit
        if self.search.repetition:
            self._grow_history()
            self.history[torch.arange(len(self.keys), device=self.device), 0, self.steps] = nxt
        ended = (nxt == EOS_ID).tolist()
        for row, tok in enumerate(nxt.tolist()):
            if not ended[row]:
                self.out[row].append(tok)
        self.steps += 1
        self.generated += len(ended)
        done = [(self.keys[r], [Hypothesis(self.out[r], math.nan)]) for r in range(len(ended)) if ended[r]]
        self.tokens = nxt
        if done:
            self._keep(torch.tensor([r for r, e in enumerate(ended) if not e], dtype=torch.long,
                                    device=self.device))  # fmt: skip
        return done

    def _beam(self, logits: torch.Tensor) -> list[tuple[Hashable, list[Hypothesis]]]:
        """The choices of beam_search, with one step count per sentence (its length penalty and limit)."""
        B, K, alpha = len(self.keys), self.K, self.alpha
        lengths = self.steps.repeat_interleave(K)  # (B*K,) each beam's valid history
        logp = step_logp(logits, self.history.reshape(B * K, -1), lengths, self.search)  # (B*K, V)
        logp = logp.view(B, K, -1)  # (B, K, V)
        self.scores, self.best, beam_src, new_tok, found = beam_step(
            self.scores, self.best, logp, self.steps, self.limit, self.history, alpha
        )  # (B, K) new beams, (B, N)
        for b, hyp in found:
            self.finished[b].append(hyp)
        self._grow_history()
        self.history = self.history.gather(1, beam_src[:, :, None].expand_as(self.history))  # follow beams
        self.history[torch.arange(B, device=self.device), :, self.steps] = new_tok
        self.steps += 1
        self.generated += B
        self.tokens = new_tok.reshape(-1)
        done = can_stop(self.scores, self.best, self.limit, alpha, self.steps, self.search.stopping)  # (B,)
        out = [(self.keys[b], best_first(self.finished[b], self.search.nbest))
               for b in done.nonzero().squeeze(1).tolist()]  # fmt: skip; [] = no finite hypothesis (NaN)
        keep = (~done).nonzero().squeeze(1)  # (B',)
        self._keep(keep, (keep[:, None] * K + beam_src[keep]).reshape(-1))  # the kept beams' state rows
        return out

    def _grow_history(self) -> None:
        """Room for one more token per row (the width doubles when full)."""
        if int(self.steps.max()) >= self.history.size(2):
            self.history = torch.cat([self.history, torch.zeros_like(self.history)], 2)

    # ---------------------------------------------------------------------------------- join / leave

    def _admit(self) -> list[Hashable]:
        """Waiting sentences join while the running source tokens stay within search.batch_tokens (the first
        one always joins an empty batch)."""
        used = sum(self.src_tokens)
        new: list[tuple[Hashable, list[int], SearchConfig]] = []
        while self.waiting:
            need = len(self.waiting[0][1]) + 1
            if (self.keys or new) and used + need > self.search.batch_tokens:
                break
            new.append(self.waiting.popleft())
            used += need
        if not new:
            return []
        try:
            state = self._encode(new)
        except Exception:  # encode each alone: those that fail again go to self.failed, the rest join
            state, joined = None, []
            for item in new:
                try:
                    one = self._encode([item])
                except Exception as e:
                    self.failed.append((item[0], e))
                    continue
                state = one if state is None else self.model.join_states(state, one)
                joined.append(item)
            new = joined
            if not new:
                return []
        src = pad_sources([ids for _, ids, _ in new], self.device)  # (n, S)
        n = len(new)
        self.state = state if self.state is None else self.model.join_states(self.state, state)
        dev, f64 = self.device, torch.float64
        a = torch.tensor([s.max_len_a for _, _, s in new], dtype=f64, device=dev)  # (n,) per sentence
        b = torch.tensor([s.max_len_b for _, _, s in new], dtype=f64, device=dev)
        limit = length_limits((src != PAD_ID).sum(1), a, b, sequence_limit(self.model))  # (n,)
        self.keys += [k for k, _, _ in new]
        self.src_tokens += [len(ids) + 1 for _, ids, _ in new]
        self.limit = torch.cat([self.limit, limit])
        alpha = torch.tensor([s.alpha for _, _, s in new], dtype=f64, device=dev)  # (n,)
        self.alpha = torch.cat([self.alpha, alpha])
        self.steps = torch.cat([self.steps, torch.zeros(n, dtype=torch.long, device=self.device)])
        self.tokens = torch.cat([self.tokens, bos(n * self.K, self.device)])
        self.out += [[] for _ in range(n)]
        self.scores = torch.cat([self.scores, first_scores(n, self.K, self.device)])
        self.best = torch.cat([self.best, self.best.new_full((n, self.best.size(1)), float("-inf"))])
        self.history = torch.cat([self.history, self.history.new_zeros(n, *self.history.shape[1:])])
        self.finished += [[] for _ in range(n)]
        self.choose.add([ids for _, ids, _ in new])
        return [k for k, _, _ in new]

    def _encode(self, new: list[tuple[Hashable, list[int], SearchConfig]]):
        """The decoder state of new sentences: K rows each (the running batch is not touched)."""
        src = pad_sources([ids for _, ids, _ in new], self.device)  # (n, S)
        state = self.model.encode(src, paged=self.pool)
        if self.K > 1:
            rows = torch.arange(len(new), device=self.device).repeat_interleave(self.K)  # (n*K,) K beams each
            state = self.model.reorder_state(state, rows)
        return state

    def _keep(self, keep: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Keep sentences `keep` (B',), in order; `rows` (B'*K,) are their state rows (default: all K rows
        of each, in place). Nobody left: the state goes, and its cache blocks with it."""
        if rows is None:
            rows = (keep[:, None] * self.K + torch.arange(self.K, device=self.device)).reshape(-1)
        self.state = self.model.reorder_state(self.state, rows)
        idx = keep.tolist()
        self.keys = [self.keys[i] for i in idx]
        self.src_tokens = [self.src_tokens[i] for i in idx]
        self.out = [self.out[i] for i in idx]
        self.finished = [self.finished[i] for i in idx]
        self.choose.keep(idx)
        self.limit, self.steps, self.alpha = self.limit[keep], self.steps[keep], self.alpha[keep]
        self.scores, self.best, self.history = self.scores[keep], self.best[keep], self.history[keep]
        self.tokens = self.tokens.view(-1, self.K)[keep].reshape(-1) if self.K > 1 else self.tokens[keep]
        if not self.keys:
            self.state = None

