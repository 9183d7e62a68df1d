"""The training errors a user can fix: a bad option, a missing checkpoint to resume, non-finite losses, OOM.
`translate.train` turns them into one line on stderr and exit code 2."""


class TrainingError(RuntimeError):
    """A one-line, user-facing training failure (no traceback needed)."""
