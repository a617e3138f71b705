"""What the response cache hands a store that keeps entries with their versions (Redis, the SQLite file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VersionedEntry:
    """An answer to keep only while nothing it shows has changed since its reader began.

    :param key: the entry's name.
    :param value: what is kept.
    :param timeout: seconds it may be kept.
    :param made_at: the write counter's value when its reader began.
    :param versions: the version keys of what it shows (``VersionedStore.version_key``).
    :param versions_timeout: seconds a version key created for it is kept.
    """

    key: str
    value: Any
    timeout: int
    made_at: int
    versions: tuple[str, ...]
    versions_timeout: int
