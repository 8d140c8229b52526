"""What this machine can hold: sizes are refused before anything is allocated, so that
``--num-classes 10**9`` is one line naming the option, not an allocator's traceback."""

from __future__ import annotations

import os

from .errors import ConvzooError


def memory_bytes() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(nbytes: int, what: str) -> None:
    """Refuse ``what`` when its ``nbytes`` exceed this machine's physical memory."""
    limit = memory_bytes()
    if limit is not None and nbytes > limit:
        raise ConvzooError(f"{what}: {nbytes / 2**30:,.0f} GiB, more than this machine's "
                           f"{limit / 2**30:,.0f} GiB of memory")
