"""The project's own error type.

Every mistake a user can make (a bad argument, a missing or malformed file, an unknown model) is
raised as :class:`ConvzooError` with a message that names the thing and what was expected. The CLI
turns it into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations


class ConvzooError(Exception):
    """A user-facing error: the message names the file, argument or model and what was expected."""


class DataError(ConvzooError):
    """A data file or folder that cannot be read as the format it claims to be."""


class TrainingDiverged(ConvzooError):
    """The training loss became NaN or infinite; the message names the epoch, step and the last
    good checkpoint."""
