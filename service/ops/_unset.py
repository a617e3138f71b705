"""A marker for "field not sent", distinct from an explicit ``null``."""

from __future__ import annotations

from enum import Enum
from typing import Final


class _Unset(Enum):
    UNSET = "UNSET"


#: Default of optional keyword arguments in partial updates.
UNSET: Final = _Unset.UNSET
#: The type of :data:`UNSET`, for annotations (``str | Unset``).
Unset = _Unset
