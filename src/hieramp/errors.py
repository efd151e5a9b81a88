"""One exception type for user mistakes, kept apart from internal errors.

The command line prints a `UserError` as a single line and exits with code 2; anything else
is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in what the user asked for; the message names the problem and the fix."""
