"""One walk of an answer's data: the surrogate keys it shows and the places of the viewer's flags."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.json_bodies import encode_json
from service.shared_reads.shown import SharedAnswer, for_viewer, names, shown


def _article(slug: str, favorited: bool, author: str, following: bool, **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": extra.get("title", slug),
        "favorited": favorited,
        "favoritesCount": 1,
        "author": {"username": author, "bio": extra.get("bio"), "following": following},
    }


ANSWERS = [
    {"article": _article("a", True, "Jake", False)},
    {
        "articles": [
            _article("a", False, "jake", True),
            _article("b", True, "anna", False, title='"favorited":false'),  # the pattern as text, escaped
            _article("c", True, "jake", True, bio="é\u2028"),
        ],
        "articlesCount": 3,
    },
    {"profile": {"username": "jake", "bio": None, "image": None, "following": True}},
    {"comments": [{"id": 1, "body": "x", "author": {"username": "jake", "following": True}}]},
    {"tags": ["a", "b"]},
]


@pytest.mark.parametrize("data", ANSWERS)
def test_the_viewers_body_is_byte_identical_to_encoding_what_was_dumped(data: dict[str, Any]) -> None:
    expected = encode_json(data)

    found = shown(copy.deepcopy(data))

    assert found is not None and found.body == expected


@pytest.mark.parametrize("data", ANSWERS)
def test_the_shared_body_is_the_answer_with_every_flag_false(data: dict[str, Any]) -> None:
    cleared = copy.deepcopy(data)
    found = shown(data)
    for value in _dicts(cleared):
        for flag in ("favorited", "following"):
            if flag in value:
                value[flag] = False

    assert found is not None and found.shared.body == encode_json(cleared)


def test_flags_are_written_in_by_name_for_another_viewer() -> None:
    found = shown(copy.deepcopy(ANSWERS[1]))
    assert found is not None

    places = found.shared.places()
    body = for_viewer(found.shared.body, places, {"favorited": frozenset({"c"}), "following": frozenset({"anna"})})

    flags = [(a["slug"], a["favorited"], a["author"]["following"]) for a in _decoded(body)["articles"]]
    assert flags == [("a", False, False), ("b", False, True), ("c", True, False)]


def test_the_keys_are_those_of_every_article_and_profile_shown() -> None:
    found = shown(copy.deepcopy(ANSWERS[1]))

    assert found is not None
    assert found.keys == {"article:a", "article:b", "article:c", "profile:jake", "profile:anna"}
    places = found.shared.places()
    assert names(places, "favorited") == ["a", "b", "c"] and names(places, "following") == ["anna", "jake"]


def test_an_answer_with_a_flag_the_walk_cannot_name_is_not_shared() -> None:
    assert shown({"thing": {"favorited": True}}) is None  # no slug: where would a viewer's flag go?


def test_a_stored_answer_of_another_shape_is_no_answer() -> None:
    assert SharedAnswer.from_stored((1, (), b"{}", "etag")) is None  # an earlier release's entry
    assert SharedAnswer.from_stored((b"{}", "etag", "[]")) == SharedAnswer(b"{}", "etag", "[]")


def _decoded(body: bytes) -> Any:
    import json

    return json.loads(body)


def _dicts(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _dicts(value)
    elif isinstance(node, list):
        for value in node:
            found += _dicts(value)
    return found
