"""Articles, their tags and favorites."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence

from slugify import slugify
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service import queries
from service.errors import ApiError
from service.models import Article, Tag, User, favorites, later_than
from service.ops._unset import UNSET, Unset
from service.shared_reads import surrogates

#: Random characters after the title in a slug; 36**6 ≈ 2·10⁹ per title.
SLUG_SUFFIX_LENGTH = 6
#: Longest title part of a slug (the column holds 255).
SLUG_TITLE_LENGTH = 200
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_SLUG_ATTEMPTS = 5


def make_slug(title: str) -> str:
    """Kebab-case of the title plus a random suffix: ``how-to-train-your-dragon-x7k2p9``.

    Non-Latin titles are transliterated; a title with nothing to keep gives
    just the suffix. Unique with overwhelming probability; the unique
    constraint decides, and :func:`create_article` retries.
    """
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SLUG_SUFFIX_LENGTH))
    base = slugify(title, max_length=SLUG_TITLE_LENGTH, word_boundary=True)
    return f"{base}-{suffix}" if base else suffix


def create_article(
    session: Session, actor: User, *, title: str, description: str, body: str, tag_list: Sequence[str] = ()
) -> queries.ArticleRow:
    """Publish an article by the actor."""
    article = Article(title=title, description=description, body=body, author_id=actor.id)
    article.tags = _tags(session, tag_list)
    _flush_with_fresh_slug(session, article)
    changed = {surrogates.article(article.slug), surrogates.UNFILTERED_LISTS, surrogates.authored_by(actor.username)}
    surrogates.record(session.info, changed | _tag_keys(session, article.id, [t.name for t in article.tags]))
    return queries.article_by_slug(session, article.slug, actor.id)


def update_article(
    session: Session,
    actor: User,
    *,
    slug: str,
    title: str | Unset = UNSET,
    description: str | Unset = UNSET,
    body: str | Unset = UNSET,
    tag_list: Sequence[str] | Unset = UNSET,
) -> queries.ArticleRow:
    """Change the fields that were sent; a new title gives a new slug.

    :raises ApiError: 404 ``article``; 403 ``article`` if the actor is not the author.
    """
    article = _own_article(session, actor, slug)
    tags_before = {tag.name for tag in article.tags}
    if not isinstance(description, Unset):
        article.description = description
    if not isinstance(body, Unset):
        article.body = body
    if not isinstance(tag_list, Unset):
        article.tags = _tags(session, tag_list)
    article.updated_at = later_than(article.updated_at)
    if not isinstance(title, Unset) and title != article.title:
        article.title = title
        _flush_with_fresh_slug(session, article)
    else:
        session.flush()
    changed = {surrogates.article(slug), surrogates.article(article.slug)}
    if article.slug != slug:
        changed.add(surrogates.comments(slug))  # the old URL's comments page is gone
    moved = tags_before.symmetric_difference(tag.name for tag in article.tags)
    surrogates.record(session.info, changed | _tag_keys(session, article.id, moved))
    return queries.article_by_slug(session, article.slug, actor.id)


def delete_article(session: Session, actor: User, *, slug: str) -> None:
    """Delete the actor's article; its comments, favorites and tag links go with it.

    :raises ApiError: 404 ``article``; 403 ``article`` if the actor is not the author.
    """
    article_id, author_id = queries.article_id_by_slug(session, slug)
    if author_id != actor.id:
        raise ApiError.forbidden("article")
    tags, fans = queries.article_audience(session, article_id)
    changed = {
        surrogates.article(slug),
        surrogates.comments(slug),
        surrogates.UNFILTERED_LISTS,
        surrogates.authored_by(actor.username),
        *(surrogates.favorited_by(fan) for fan in fans),
    }
    surrogates.record(session.info, changed | _tag_keys(session, article_id, tags))
    # The database cascades (ON DELETE CASCADE) remove comments, favorites and tag links.
    session.execute(delete(Article).where(Article.id == article_id))


def favorite(session: Session, actor: User, *, slug: str) -> queries.ArticleRow:
    """Favorite an article; twice is the same as once.

    :raises ApiError: 404 ``article``.
    """
    article_id, _ = queries.article_id_by_slug(session, slug)
    try:
        with session.begin_nested():
            session.execute(insert(favorites).values(user_id=actor.id, article_id=article_id))
        _record_favorite(session, actor, slug)
    except IntegrityError:
        pass  # already a favorite (or a concurrent request made it one): same outcome, nothing changed
    return queries.article_by_slug(session, slug, actor.id)


def unfavorite(session: Session, actor: User, *, slug: str) -> queries.ArticleRow:
    """Remove an article from the actor's favorites; twice is the same as once.

    :raises ApiError: 404 ``article``.
    """
    article_id, _ = queries.article_id_by_slug(session, slug)
    removed = session.execute(
        delete(favorites).where(favorites.c.user_id == actor.id, favorites.c.article_id == article_id)
    )
    if removed.rowcount:  # type: ignore[attr-defined]
        _record_favorite(session, actor, slug)
    return queries.article_by_slug(session, slug, actor.id)


def _record_favorite(session: Session, actor: User, slug: str) -> None:
    """A favorite changes the article's ``favoritesCount`` and the actor's ``?favorited=`` lists."""
    surrogates.record(session.info, (surrogates.article(slug), surrogates.favorited_by(actor.username)))


def _tag_keys(session: Session, article_id: int, names: Iterable[str]) -> set[str]:
    """The keys of the tag lists an article enters or leaves by ``names``.

    The tags page changes too when one of them comes into or goes out of use,
    that is when no other article carries it.
    """
    names = set(names)
    keys = {surrogates.tagged(name) for name in names}
    if names - queries.tags_in_use_elsewhere(session, article_id, names):
        keys.add(surrogates.TAGS_PAGE)
    return keys


def _own_article(session: Session, actor: User, slug: str) -> Article:
    stmt = select(Article).where(Article.slug == slug).options(selectinload(Article.tags))
    article = session.scalars(stmt).one_or_none()
    if article is None:
        raise ApiError.not_found("article")
    if article.author_id != actor.id:
        raise ApiError.forbidden("article")
    return article


def _flush_with_fresh_slug(session: Session, article: Article) -> None:
    """Give the article a new slug and flush; retry on the (rare) collision."""
    for _ in range(_SLUG_ATTEMPTS):
        slug = make_slug(article.title)
        try:
            # Set inside the savepoint: begin_nested() flushes earlier changes first.
            with session.begin_nested():
                article.slug = slug
                session.add(article)
            return
        except IntegrityError:
            if session.scalar(select(Article.id).where(Article.slug == slug)) is None:
                raise  # not a slug collision: let the dispatcher report it
    raise ApiError.unavailable("slug", retry_after=1, message="could not be generated, try again")


def _tags(session: Session, names: Sequence[str]) -> list[Tag]:
    """The Tag rows for ``names`` (stripped, de-duplicated, in name order), creating missing ones.

    Two requests may create the same new tag at once: the unique constraint
    decides, and the loser reads the winner's row. In name order, because each
    link adds to its tag's kept count (``models.totals``), locking the tag's
    row: two articles with the same tags lock them in the same order, never
    each waiting for the other. (A list's tags are shown in that order anyway.)
    """
    wanted = sorted(dict.fromkeys(name.strip() for name in names))
    if not wanted:
        return []
    found = {tag.name: tag for tag in session.scalars(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name in found:
            continue
        tag = Tag(name=name)
        try:
            with session.begin_nested():
                session.add(tag)
            found[name] = tag
        except IntegrityError:
            found[name] = session.scalars(select(Tag).where(Tag.name == name)).one()
    return [found[name] for name in wanted]
