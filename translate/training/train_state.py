"""What the loop itself must carry over a restart: where it is in the data and how validation has gone.

Checkpoints store it as `train_state` (numbers only, so `torch.load(weights_only=True)` reads it) beside the
model, optimizer, schedule, grad-scaler and RNG states. The data position (epoch, micro-batches consumed in
it) is enough to resume mid-epoch: an epoch's batches depend only on (seed, epoch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class TrainState:
    step: int = 0  # optimizer updates done
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # this rank's micro-batches consumed in the current epoch
    best_bleu: float = -1.0  # best dev BLEU so far (-1: not validated yet)
    best_step: int = 0  # the step of best_bleu (0: none)
    bad_validations: int = 0  # validations since best_bleu (for trainer.patience)

    def record_validation(self, bleu: float) -> bool:
        """Count a validation's dev BLEU; True when it is a new best."""
        if bleu > self.best_bleu:
            self.best_bleu, self.best_step, self.bad_validations = bleu, self.step, 0
            return True
        self.bad_validations += 1
        return False

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.best_bleu, self.best_step = float(state["best_bleu"]), int(state["best_step"])
        self.bad_validations = int(state["bad_validations"])

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> TrainState:
        """The state a checkpoint holds (models.checkpoint.load_for_resume checked it has train_state)."""
        state = cls()
        state.load_state_dict(ckpt["train_state"])
        return state
