"""One exception type for every mistake a user can make.

The CLI turns an `InfoganError` into a one-line message and exit code 2; every message names
the problem and, where there is one, the fix.
"""


class InfoganError(Exception):
    """A user-facing error: bad input, a bad file, a bad run folder."""
