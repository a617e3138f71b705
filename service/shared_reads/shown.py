"""What a shared answer shows, found in one walk of its data before it is encoded.

One rule says what an answer shows, for both things the shared reads need:

- the **surrogate keys** of its articles and profiles (``article:<slug>``,
  ``profile:<username>``), which a write that changes one of them forgets;
- the **places of the viewer's flags**: where ``favorited`` and ``following``
  sit in the encoded body, so that a signed-in reader's answer is the shared
  body with ``true`` written in at those places, without parsing it again.

An article is an object with ``slug`` and ``favorited``; a profile one with
``username`` and ``following`` (:data:`FLAGS`), at any depth: a list's
articles, an article's author, a comment's author. A new viewer flag is one
line here (and its column in ``queries``). Imports the surrogate keys and the
JSON encoding only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from werkzeug.http import generate_etag

from service.json_bodies import encode_json
from service.shared_reads import surrogates

#: The viewer's flags an answer may carry: the flag's field → the field that names its object, and the
#: surrogate key of that object.
FLAGS: dict[str, tuple[str, Callable[[str], str]]] = {
    "favorited": ("slug", surrogates.article),
    "following": ("username", surrogates.profile),
}
#: How each flag reads in an answer made for nobody in particular (an anonymous reader's).
_UNSET = {flag: f'"{flag}":false'.encode() for flag in FLAGS}
#: Each flag's field, whatever its value: in a JSON body only a key can be followed by a colon.
_FIELD = tuple(f'"{flag}":'.encode() for flag in FLAGS)
#: A flag's place: (offset of its ``false`` in the shared body, the flag, the name of its object).
Place = tuple[int, str, str]


class SharedAnswer(NamedTuple):
    """An answer as every reader shares it: the anonymous body, its ETag, and where each viewer flag sits.

    The places are kept encoded (one JSON string) and read only for a signed-in
    reader: an anonymous hit, the commonest answer there is, unpickles three
    plain values whatever the page shows. Plain values, too, so that no class
    name is pickled into a cache another release reads.
    """

    body: bytes
    etag: str
    encoded_places: str

    def places(self) -> list[Place]:
        """Where each viewer flag sits, in the body's order."""
        return json.loads(self.encoded_places)  # type: ignore[no-any-return]  # [offset, flag, name] lists

    @classmethod
    def from_stored(cls, stored: Any) -> SharedAnswer | None:
        """An answer a store kept, or None for a value of another shape (another release's)."""
        if type(stored) is tuple and len(stored) == 3 and type(stored[0]) is bytes:
            return cls(*stored)
        return None


def names(places: list[Place], flag: str) -> list[str]:
    """The names of the objects carrying ``flag`` (slugs for ``favorited``), sorted, once each."""
    return sorted({name for _, found, name in places if found == flag})


def for_viewer(body: bytes, places: list[Place], flags: Mapping[str, frozenset[str]]) -> bytes:
    """``body`` with a viewer's flags written in at ``places``: ``flags`` maps a flag to the names it is true for."""
    parts: list[bytes] = []
    last = 0
    for offset, flag, name in places:
        if name in flags.get(flag, ()):
            parts += (body[last:offset], b"true")
            last = offset + 5  # len(b"false")
    if not parts:
        return body
    parts.append(body[last:])
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Shown:
    """An answer's data split into what every reader shares and what the viewer adds."""

    #: The surrogate keys of the articles and profiles shown.
    keys: frozenset[str]
    #: The shared answer: every flag false.
    shared: SharedAnswer
    #: The answer as dumped, for its viewer (the shared body when the viewer's flags are all false).
    body: bytes


def shown(data: Any) -> Shown | None:
    """Walk ``data`` (a reply schema's dump) once: its keys, its shared answer, and the viewer's body.

    :returns: None when the places of the flags cannot be told apart in the
        encoded body (an answer of a shape this module does not know): such an
        answer is not shared.
    """
    keys: set[str] = set()
    found: list[tuple[dict[str, Any], str, str]] = []  # (holder, flag, name) in the order they are encoded
    _walk(data, keys, found)
    viewer = {flag: frozenset(name for holder, f, name in found if f == flag and holder[f]) for flag in FLAGS}
    for holder, flag, _ in found:
        holder[flag] = False
    body = encode_json(data)
    places: list[Place] = []
    offset = 0
    for _, flag, name in found:
        offset = body.find(_UNSET[flag], offset)
        if offset < 0:
            return None
        offset += len(_UNSET[flag]) - 5
        places.append((offset, flag, name))
    if sum(body.count(field) for field in _FIELD) != len(places):
        return None  # a flag the walk could not name: its places would be wrong, its value the viewer's
    shared = SharedAnswer(body, generate_etag(body), json.dumps(places, ensure_ascii=False, separators=(",", ":")))
    return Shown(frozenset(keys), shared, for_viewer(body, places, viewer))


def _walk(node: Any, keys: set[str], found: list[tuple[dict[str, Any], str, str]]) -> None:
    """Depth first, in the order ``json.dumps`` writes (a dict's items in order, then a list's)."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in FLAGS:
                named_by, key = FLAGS[name]
                if isinstance(node.get(named_by), str):
                    found.append((node, name, node[named_by]))
                    keys.add(key(node[named_by]))
            elif isinstance(value, dict | list):
                _walk(value, keys, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _walk(item, keys, found)
