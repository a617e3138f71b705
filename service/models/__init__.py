"""The ORM models. Alembic and ``schemas`` import them from here.

Imports only SQLAlchemy and ``service.models.*``.
"""

from service.models.article import Article, Tag, article_tags, favorites
from service.models.base import MAX_INT, Base, UTCDateTime, later_than, utcnow
from service.models.comment import Comment
from service.models.idempotency import IdempotencyKey
from service.models.invalidation import CacheInvalidation
from service.models.totals import ARTICLES_TOTAL, RECOUNTS, create_triggers, totals
from service.models.user import User, follows, new_token_stamp

__all__ = [
    "ARTICLES_TOTAL",
    "MAX_INT",
    "RECOUNTS",
    "Article",
    "Base",
    "CacheInvalidation",
    "Comment",
    "IdempotencyKey",
    "Tag",
    "UTCDateTime",
    "User",
    "article_tags",
    "create_triggers",
    "favorites",
    "follows",
    "later_than",
    "new_token_stamp",
    "totals",
    "utcnow",
]
