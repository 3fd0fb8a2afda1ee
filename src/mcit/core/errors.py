"""The one exception type for mistakes a user can fix.

A `UserError` carries a single message that names what is wrong (the file, the record, the key)
and what to do about it. The command line prints it on one line and exits non-zero without a
traceback; every other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem in the user's input (config, data, paths) with a message that says how to fix it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
