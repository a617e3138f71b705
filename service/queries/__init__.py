"""Read-side statements: what the views read and the ops look up before they write.

Every read a client can make is ONE SQL statement that returns plain rows: the
page of articles together with its total (a total the database keeps, or a
count bounded by the filter's index, ``articles._total``), each article's
author, tags (aggregated as an array) and favorites count, and the viewer's
``favorited``/``following`` flags. The rows become named tuples
(:class:`ArticleRow`, :class:`ProfileRow`, :class:`CommentRow`) that the reply
schemas (generated from the ORM models) dump like model objects; no ORM object
is built and nothing enters an identity map. Statements are built once per
shape (dialect, filters, signed in or not) and cached, so a request only binds
values. A safe request runs them on a connection of the read engine, without a
Session; a write runs them in its session. Writes keep using the ORM.
One module per resource; this package exports what the views and ops use.
Imports models and errors only; knows nothing about HTTP requests.
"""

from service.queries.articles import article_by_slug, articles_page, feed_page
from service.queries.comments import comment_by_id, comment_row, comments_by_slug
from service.queries.rows import ArticleRow, CommentRow, ProfileRow, Reads
from service.queries.tags import tag_names
from service.queries.users import (
    named,
    profile_row,
    taken_fields,
    user_by_email,
    user_by_id,
    user_by_name,
)
from service.queries.viewer import ViewerFlags, viewer_flags
from service.queries.writes import (
    article_audience,
    article_id_by_slug,
    articles_of,
    slugs_commented_by,
    slugs_favorited_by,
    tags_in_use_elsewhere,
)

__all__ = [
    "ArticleRow",
    "CommentRow",
    "ProfileRow",
    "Reads",
    "ViewerFlags",
    "article_audience",
    "article_by_slug",
    "article_id_by_slug",
    "articles_of",
    "articles_page",
    "comment_by_id",
    "comment_row",
    "comments_by_slug",
    "feed_page",
    "named",
    "profile_row",
    "slugs_commented_by",
    "slugs_favorited_by",
    "tag_names",
    "tags_in_use_elsewhere",
    "taken_fields",
    "user_by_email",
    "user_by_id",
    "user_by_name",
    "viewer_flags",
]
