"""What a run shows and records: the tqdm bar, TensorBoard scalars, and train_log.jsonl (one line per logged
step). Only rank 0 creates any of it; other ranks get a silent logger."""

import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from translate.training.budget import format_seconds


class RunLogger:
    def __init__(self, run_dir: Path | None, total_steps: int | None, initial_step: int, enabled: bool):
        self.enabled = enabled and run_dir is not None
        self.writer = None
        self.jsonl = None
        self.bar = None
        if not self.enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))
        self.jsonl = open(run_dir / "train_log.jsonl", "a", encoding="utf-8")
        self.bar = tqdm(
            total=total_steps or None,
            initial=initial_step,
            desc="train",
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,  # a log file gets a line every 30 s
        )

    def config_text(self, yaml_text: str) -> None:
        if self.writer:
            self.writer.add_text("config", "```yaml\n" + yaml_text + "\n```", 0)

    def step(self, step: int, loss: float, lr: float, tokens_per_s: float, eta_s: float) -> None:
        """Advance the bar one optimizer step; its postfix shows the running numbers."""
        if self.bar is None:
            return
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"loss={loss:.3f} tok/s={tokens_per_s:,.0f} lr={lr:.2e} eta={format_seconds(eta_s)}",
            refresh=False,
        )

    def scalars(self, step: int, group: str, values: dict[str, float]) -> None:
        """TensorBoard scalars under group/ and one JSON line."""
        if not self.enabled:
            return
        for name, value in values.items():
            if value is not None and math.isfinite(value):
                self.writer.add_scalar(f"{group}/{name}", value, step)
        self.jsonl.write(json.dumps({"group": group, "step": step, **values}) + "\n")
        self.jsonl.flush()

    def message(self, text: str) -> None:
        """A line that does not break the bar (rank 0 only)."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.enabled:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer:
            self.writer.flush()
            self.writer.close()
        if self.jsonl:
            self.jsonl.close()
        self.enabled = False
