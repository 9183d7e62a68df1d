"""SIGINT / SIGTERM: finish the current step, save a checkpoint, then exit (a second Ctrl-C exits at once).

The handler only records the signal; the loop polls `received` after every optimizer step, so a checkpoint is
never written from inside a half-done update.
"""

import signal
import threading


class StopOnSignal:
    """Context manager installing the handlers (main thread only; elsewhere it does nothing)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: str | None = None
        self.signum: int = 0
        self._previous = {}

    def handler(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user does not want to wait for the checkpoint
        self.received = signal.Signals(signum).name
        self.signum = signum

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self.handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous = {}
