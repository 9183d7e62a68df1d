"""The one exception type for bad input data: CLIs print it as `error: ...` and exit with code 2."""


class DataError(ValueError):
    """Bad corpus or data option; the message is one line naming the file, line or option at fault."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
