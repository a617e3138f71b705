"""``conduit seed``: deterministic demo data (``service.ops.seed_data``), in batches."""

from __future__ import annotations

import random
import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from service.cli.base import transaction
from service.ops import seed_data


@click.command()
@click.option("--users", "n_users", default=100, show_default=True, type=click.IntRange(1))
@click.option("--articles", "n_articles", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--seed", "seed", default=1, show_default=True, type=int, help="Same seed, same data.")
@click.option("--prefix", default="seed", show_default=True, help="Usernames are PREFIX1, PREFIX2, ...")
@click.option("--batch", default=2000, show_default=True, type=click.IntRange(1), help="Articles per commit.")
def seed(n_users: int, n_articles: int, seed: int, prefix: str, batch: int) -> None:
    """Fill the database with deterministic demo data.

    Users (password "seeded-password"), follows, articles with tags, favorites
    and comments, inserted in batches through the ORM's bulk INSERT.
    """
    rng = random.Random(seed)
    try:
        with transaction() as session:
            user_ids, follows = seed_data.seed_users(session, rng, n_users, prefix)
            tag_ids = seed_data.seed_tags(session)
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", None) or exc).__name__
        raise click.ClickException(f"seeding users failed ({reason}); is the prefix {prefix!r} already used?") from None
    with click.progressbar(length=n_articles, label="articles", file=sys.stderr) as bar:
        for start in range(0, n_articles, batch):
            count = min(batch, n_articles - start)
            with transaction() as session:
                seed_data.seed_articles(session, rng, start, count, user_ids, tag_ids)
            bar.update(count)
    click.echo(f"seeded {n_users} users, {follows} follows, {n_articles} articles (seed {seed})")
