"""Deterministic demo data: users, follows, tags, articles, favorites and comments.

Used by ``conduit seed`` (and the benchmarks). Rows go in through the ORM's
bulk INSERT, many per statement, so a thousand articles take a second; the same
seed always gives the same data.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service import auth
from service.models import Article, Comment, Tag, User, article_tags, favorites, follows

#: The words titles, bodies and tags are made of.
WORDS = (
    "dragon",
    "train",
    "believe",
    "river",
    "mountain",
    "code",
    "python",
    "werkzeug",
    "garden",
    "winter",
    "summer",
    "light",
    "shadow",
    "ocean",
    "forest",
    "castle",
    "signal",
    "quiet",
    "storm",
    "engine",
    "letter",
    "harbor",
    "silver",
    "golden",
    "paper",
    "machine",
    "north",
    "south",
)
#: The password of every seeded user.
PASSWORD = "seeded-password"
#: When the seeded history starts; article n is written n minutes later.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def seed_users(session: Session, rng: random.Random, count: int, prefix: str) -> tuple[list[int], int]:
    """``count`` users named PREFIX1, PREFIX2, ..., each following up to five others.

    :returns: the new users' ids and how many follows were made.
    """
    password_hash = auth.hash_password(PASSWORD)
    rows = [
        {
            "username": f"{prefix}{i}",
            "email": f"{prefix}{i}@example.org",
            "password_hash": password_hash,
            "bio": f"Seeded user {i}",
            "image": None,
            "created_at": EPOCH,
            "updated_at": EPOCH,
        }
        for i in range(1, count + 1)
    ]
    user_ids = list(session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), rows))
    pairs = {(a, b) for a in user_ids for b in rng.sample(user_ids, min(5, len(user_ids))) if a != b}
    if pairs:
        session.execute(insert(follows), [{"follower_id": a, "followed_id": b} for a, b in sorted(pairs)])
    return user_ids, len(pairs)


def seed_tags(session: Session) -> list[int]:
    """The ids of the demo tags (one per word), creating those that do not exist yet."""
    existing = set(session.scalars(select(Tag.name).where(Tag.name.in_(WORDS))))
    missing = [{"name": name} for name in WORDS if name not in existing]
    if missing:
        session.execute(insert(Tag), missing)
    return list(session.scalars(select(Tag.id).where(Tag.name.in_(WORDS)).order_by(Tag.name)))


def seed_articles(
    session: Session, rng: random.Random, start: int, count: int, user_ids: list[int], tag_ids: list[int]
) -> None:
    """Articles ``start`` to ``start + count - 1``, with up to 4 tags, 3 favorites and 2 comments each."""
    rows = []
    for n in range(start, start + count):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))).capitalize()
        at = EPOCH + timedelta(seconds=n * 60 + rng.randint(0, 59))
        rows.append(
            {
                "slug": f"{title.lower().replace(' ', '-')}-{n:07d}",
                "title": title,
                "description": f"About {title.lower()}",
                "body": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))),
                "author_id": rng.choice(user_ids),
                "created_at": at,
                "updated_at": at,
            }
        )
    ids = list(session.scalars(insert(Article).returning(Article.id, sort_by_parameter_order=True), rows))
    links, favs, comments = [], [], []
    for article_id, row in zip(ids, rows, strict=True):
        for tag_id in rng.sample(tag_ids, rng.randint(0, 4)):
            links.append({"article_id": article_id, "tag_id": tag_id})
        for user_id in rng.sample(user_ids, min(len(user_ids), rng.randint(0, 3))):
            favs.append({"user_id": user_id, "article_id": article_id})
        for _ in range(rng.randint(0, 2)):
            comments.append(
                {
                    "article_id": article_id,
                    "author_id": rng.choice(user_ids),
                    "body": " ".join(rng.choice(WORDS) for _ in range(8)),
                    "created_at": row["created_at"],
                    "updated_at": row["created_at"],
                }
            )
    for table, values in ((article_tags, links), (favorites, favs)):
        if values:
            session.execute(insert(table), values)
    if comments:
        session.execute(insert(Comment), comments)
