"""Validation: the dev loss per target token, BLEU on the dev text, and no trace in any RNG."""

import contextlib
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from translate.data.batching import collate
from translate.data.pipeline import prepare_data
from translate.models.build import build_model
from translate.search import SearchConfig
from translate.training.validate import dev_subset, validate


@pytest.fixture
def tiny(smoke_cfg):
    cfg = smoke_cfg()
    data = prepare_data(cfg.data, cache_dir=cfg.cache_dir, splits=("dev",))
    tok = data.tokenizer
    torch.manual_seed(0)
    model = build_model(OmegaConf.to_container(cfg.model), tok.src_vocab_size, tok.tgt_vocab_size, tok.shared)
    return model, tok, dev_subset(data.datasets["dev"], 12)


def run(model, tok, dev):
    search = SearchConfig(beam_size=1, batch_tokens=200, max_len_a=0.5, max_len_b=3)
    return validate(model, tok, dev, search, autocast=contextlib.nullcontext)


def test_dev_loss_is_the_nll_per_target_token(tiny):
    model, tok, dev = tiny
    scores = run(model, tok, dev)
    nll = tokens = 0
    with torch.no_grad():
        for row in dev:  # one example at a time: no padding, no batching
            b = collate([row])
            logits = model(b.src, b.tgt_in)  # (1, T, V)
            nll += float(F.cross_entropy(logits[0], b.tgt_out[0], reduction="sum"))
            tokens += b.n_tgt_tokens
    assert scores["loss"] == pytest.approx(nll / tokens, rel=1e-5)
    assert scores["ppl"] == pytest.approx(np.exp(nll / tokens), rel=1e-5)
    assert 0.0 <= scores["bleu"] <= 100.0 and scores["bleu_signature"].startswith("nrefs:1")
    assert [r for _, _, r in scores["examples"]] == dev["tgt"][:2]
    assert not model.training


def test_validation_leaves_every_rng_as_it_found_it(tiny):
    """Even a model that draws from torch's RNG in eval mode: validating must not shift the training run."""
    model, tok, dev = tiny
    draws = []
    model.register_forward_pre_hook(lambda module, args: draws.append(torch.rand(1)))
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = torch.get_rng_state(), random.getstate(), np.random.get_state()
    run(model, tok, dev)
    assert draws  # the hook did draw
    assert torch.equal(torch.get_rng_state(), before[0])
    assert random.getstate() == before[1]
    after = np.random.get_state()
    assert after[0] == before[2][0] and np.array_equal(after[1], before[2][1]) and after[2:] == before[2][2:]
