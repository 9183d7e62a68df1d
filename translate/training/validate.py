"""Validation: dev loss (teacher forcing) and dev BLEU (greedy search with the KV cache, sacrebleu).

Kept cheap because it runs inside the training budget: decoding is batched by tokens and sorted by length
(translate.search.translate_dataset), and `val_subset` > 0 scores an evenly spread subset of the dev split
instead of all of it. Validation runs in torch.random.fork_rng (the torch CPU and the model's CUDA RNG, the
only ones it could draw from), so validating never changes the training run.
"""

import math
import time

import torch

from translate.data.batching import make_batches
from translate.metrics.bleu import corpus_scores
from translate.search import SearchConfig, translate_dataset
from translate.training.loss import label_smoothed_loss


def dev_subset(dataset, size: int):
    """`size` examples spread evenly over the split (every book, not the first chapters); 0 = all."""
    n = len(dataset)
    if size <= 0 or size >= n:
        return dataset
    return dataset.select([i * n // size for i in range(size)])


@torch.no_grad()
def validate(model, tokenizer, dataset, search: SearchConfig, *, autocast) -> dict:
    """-> {loss, ppl, bleu, chrf, bleu_signature, seconds} on `dataset` (model left in eval mode).

    Decodes with `search` (conf/train.yaml's trainer.val_search: greedy); search.batch_tokens also sizes the
    dev-loss batches."""
    start = time.monotonic()
    model.eval()
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        nll_sum, n_tokens = 0.0, 0
        for batch in make_batches(dataset, search.batch_tokens, shuffle=False, seed=0):
            batch = batch.to(device)
            with autocast():
                logits = model(batch.src, batch.tgt_in)  # (B, T, V)
            _, nll = label_smoothed_loss(logits, batch.tgt_out)
            nll_sum += float(nll)
            n_tokens += batch.n_tgt_tokens
        loss = nll_sum / max(n_tokens, 1)
        with autocast():
            hyps = translate_dataset(model, tokenizer, dataset, search)
        scores = corpus_scores(hyps, list(dataset["tgt"]))
    return {
        "loss": loss,
        "ppl": math.exp(min(loss, 50.0)),
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "bleu_signature": scores["bleu_signature"],
        "seconds": time.monotonic() - start,
        "examples": [(s, h, r) for s, h, r in zip(dataset["src"][:2], hyps[:2], dataset["tgt"][:2])],
    }
