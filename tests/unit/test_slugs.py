"""Article slugs: readable, and unique by a random suffix."""

from __future__ import annotations

import re

from service.ops.articles import make_slug


def test_make_slug_is_kebab_case_with_a_random_suffix() -> None:
    assert re.fullmatch(r"hello-world-[a-z0-9]{6}", make_slug("Hello, World!"))
    assert make_slug("same") != make_slug("same")


def test_make_slug_of_a_title_without_letters_is_just_the_suffix() -> None:
    assert re.fullmatch(r"[a-z0-9]{6}", make_slug("!!!"))
