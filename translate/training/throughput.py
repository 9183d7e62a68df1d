"""Training speed, and the train scalars between two log points, over training time only.

Two rates: the progress bar's, smoothed over updates (0.9 old + 0.1 new), and the log's, over the window since
the last log point. The window also sums the loss, NLL and gradient norm of the updates applied in it, for
their means. Validation time is taken out (`pause`), so tokens/s measures training alone.
"""

import math
import time


class Throughput:
    def __init__(self) -> None:
        self.bar_rate = 0.0  # target tokens/s, smoothed
        self.last_update_end = time.monotonic()
        self.total_tokens = self.total_seconds = 0.0  # the whole run's applied updates, training time only
        self._new_window()

    def _new_window(self) -> None:
        self.loss = self.nll = self.tokens = self.grad_norm = 0.0  # sums over the window's applied updates
        self.steps = 0
        self.start = time.monotonic()

    def update(self, tokens: float, applied: bool, loss: float, nll: float, grad_norm: float) -> None:
        """After each update (all ranks' target tokens and loss sums); skipped updates only move the bar."""
        now = time.monotonic()
        seconds = now - self.last_update_end
        rate = tokens / max(seconds, 1e-9)
        self.bar_rate = rate if self.bar_rate == 0.0 else 0.9 * self.bar_rate + 0.1 * rate
        self.last_update_end = now
        if applied:
            self.loss += loss
            self.nll += nll
            self.tokens += tokens
            self.grad_norm += grad_norm if math.isfinite(grad_norm) else 0.0  # fp16: an overflow was skipped
            self.steps += 1
            self.total_tokens += tokens
            self.total_seconds += seconds

    def take(self) -> dict[str, float]:
        """The window's loss and perplexity per target token, mean gradient norm and tokens/s; then a new
        window begins."""
        scalars = {
            "loss": self.loss / self.tokens,
            "ppl": math.exp(min(self.nll / self.tokens, 50.0)),
            "grad_norm": self.grad_norm / self.steps,
            "tokens_per_s": self.tokens / max(time.monotonic() - self.start, 1e-9),
        }
        self._new_window()
        return scalars

    @property
    def overall_rate(self) -> float:
        """Target tokens/s over the whole run's applied updates (validation left out)."""
        return self.total_tokens / max(self.total_seconds, 1e-9)

    def pause(self, seconds: float) -> None:
        """Leave out `seconds` just spent on something else (validation)."""
        self.start += seconds
        self.last_update_end = time.monotonic()
