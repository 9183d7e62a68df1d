"""EngineError: an engine or model directory that cannot be used; its message is one line naming the path."""


class EngineError(ValueError):
    """A missing/unreadable model directory, a missing optional package, or an option the engine lacks."""
