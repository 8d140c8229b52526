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


def first_line(e: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (its type when empty), at most ``limit``
    characters: what a one-line error may quote of a library's message."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(text: str, limit: int = 80) -> str:
    """``text`` (a name the user gave) for a message: whole when short, else its start and its
    length, so that a 200,000-character name does not fill the screen."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
