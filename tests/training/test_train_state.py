import io

import torch

from translate.training.train_state import TrainState


def test_record_validation_keeps_the_best_and_counts_the_rest():
    s = TrainState(step=10)
    assert s.record_validation(5.0) and (s.best_bleu, s.best_step, s.bad_validations) == (5.0, 10, 0)
    s.step = 20
    assert not s.record_validation(5.0)  # equal is not better
    s.step = 30
    assert not s.record_validation(4.0) and (s.best_bleu, s.best_step, s.bad_validations) == (5.0, 10, 2)
    s.step = 40
    assert s.record_validation(6.5) and (s.best_bleu, s.best_step, s.bad_validations) == (6.5, 40, 0)
    assert TrainState().record_validation(0.0)  # the first validation is a best, even at BLEU 0


def test_state_dict_loads_weights_only_and_round_trips():
    s = TrainState(step=7, epoch=2, batch_in_epoch=13, best_bleu=3.25, best_step=6, bad_validations=1)
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    t = TrainState()
    t.load_state_dict(torch.load(buf, weights_only=True))
    assert t == s


def test_from_checkpoint_reads_train_state():
    new = TrainState(step=7, epoch=2, batch_in_epoch=13, best_bleu=3.25, best_step=6, bad_validations=1)
    assert TrainState.from_checkpoint({"train_state": new.state_dict(), "step": 99}) == new
