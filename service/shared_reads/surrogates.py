"""Surrogate keys: names for the pieces of data a shared answer shows.

The response cache keeps an answer together with the keys of what it shows;
a write names the keys of what it changed, and exactly the answers that show
one of them are forgotten (the surrogate keys of Varnish's xkey and Fastly).
The keys are the vocabulary both sides share:

========================  =================================================  =====================================
key                       shown by                                           changed by
========================  =================================================  =====================================
``article:<slug>``        the article's page, every list that holds it       an edit (old and new slug), a
                                                                             (un)favorite (``favoritesCount``), a
                                                                             delete
``profile:<username>``    the profile, every article, list and comment page  a profile edit (old and new name),
                          showing that author                                the account's deletion
``comments:<slug>``       the article's comments page                        a comment added or deleted; the
                                                                             article's new slug or deletion
``articles``              the unfiltered lists (every offset, their total)   an article published or deleted
``tagged:<tag>``          ``?tag=`` lists                                    an article entering or leaving the tag
``author:<username>``     ``?author=`` lists                                 the author's articles published or
                                                                             deleted; the author's new name
``favorited:<username>``  ``?favorited=`` lists                              that user's (un)favorites; a deleted
                                                                             favorite article; the user's new name
``tags``                  the tags page                                      a tag coming into or going out of use
========================  =================================================  =====================================

Nothing shared changes on a login, a registration, a sign-out, a token
revocation, a follow or an unfollow: ``following`` and ``favorited`` are the
viewer's, added per request. A filtered list depends on each of its filters'
keys, so ``?tag=a&author=b`` is forgotten by a change to either list.

Ops record what they changed with :func:`record`, on the session; the unit
of work (``service.unit_of_work``) hands the keys to the shared reads before
and after the transaction commits, for the API's writes and the admin's
commands alike. What an answer shows is found by ``shared_reads.shown``.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Literal

#: The kinds of key, as routes declare what they depend on and what they forget.
Kind = Literal["article", "profile", "comments", "articles", "tagged", "author", "favorited", "tags"]

#: The key of every unfiltered list of articles (not the ``totals`` row of ``models.totals``).
UNFILTERED_LISTS = "articles"
#: The key of the tags page.
TAGS_PAGE = "tags"
#: Where ops leave the keys of what they changed: a slot of the session's ``info`` dict.
_CHANGED = "conduit.surrogate_keys_changed"


def _keys(kind: Kind, *, any_case: bool = False) -> Callable[[str], str]:
    """The key of ``kind`` for a value: ``article:<slug>``; with ``any_case``, lower case (as usernames are)."""

    def key(value: str) -> str:
        return f"{kind}:{value.lower() if any_case else value}"

    return key


#: An article's own fields, wherever they are shown.
article = _keys("article")
#: A user's public fields (username, bio, image), wherever they are shown.
profile = _keys("profile", any_case=True)
#: The comments of an article.
comments = _keys("comments")
#: Which articles carry a tag.
tagged = _keys("tagged")
#: Which articles a user wrote.
authored_by = _keys("author", any_case=True)
#: Which articles a user favorited.
favorited_by = _keys("favorited", any_case=True)


def kind(key: str) -> str:
    """The kind of ``key``: what comes before its first colon."""
    return key.split(":", 1)[0]


def article_list(query: Mapping[str, str]) -> tuple[str, ...]:
    """What a list of articles depends on, given the first value of each query parameter."""
    keys = []
    if query.get("tag") is not None:
        keys.append(tagged(query["tag"]))
    if query.get("author") is not None:
        keys.append(authored_by(query["author"]))
    if query.get("favorited") is not None:
        keys.append(favorited_by(query["favorited"]))
    return tuple(keys) or (UNFILTERED_LISTS,)


def record(info: MutableMapping[str, Any], keys: Iterable[str]) -> None:
    """Note in a session's ``info`` that this transaction changes what ``keys`` name."""
    info.setdefault(_CHANGED, set()).update(keys)


def recorded(info: MutableMapping[str, Any]) -> frozenset[str]:
    """The keys noted by :func:`record` and forget them (the transaction is over)."""
    return frozenset(info.pop(_CHANGED, ()))
