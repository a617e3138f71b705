"""The one JSON encoding: orjson's bytes are the standard library's compact output, for what we encode."""

from __future__ import annotations

from typing import Any

import pytest

from service.json_bodies import encode_json, standard_json

TRICKY = [
    "plain",
    "ünïcode ✓ 😀 中文",
    "controls \x00\x01\x08\x0b\x1f\x7f",
    "\n\r\t\b\f",
    "line separators \u2028\u2029",
    'quotes " and \\ backslashes / slashes',
    "<script>alert(1)</script>&amp;",
    "",
    "x" * 100_000,
]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_orjson_writes_the_standard_librarys_bytes_for_every_kind_of_value(text: str) -> None:
    data: Any = {
        "article": {"slug": text, "tagList": [text, text[:3]], "favorited": False, "favoritesCount": 2**63 - 1},
        "author": {"bio": None, "following": True, "image": text},
        "articlesCount": -(2**63),
        "nested": [[], {}, [{"": text}]],
    }

    assert encode_json(data) == standard_json(data)


def test_what_orjson_refuses_is_encoded_by_the_standard_library() -> None:
    too_big = {"n": 2**64, "m": -(2**70)}
    not_str_keys = {1: "one", None: "none"}

    assert encode_json(too_big) == standard_json(too_big) == b'{"n":18446744073709551616,"m":-1180591620717411303424}'
    assert encode_json(not_str_keys) == standard_json(not_str_keys) == b'{"1":"one","null":"none"}'


def test_a_lone_surrogate_is_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_json({"s": "\udcff"})
