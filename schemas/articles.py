"""Article shapes: the article, its list item (no body), input and query shapes."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from marshmallow_sqlalchemy import auto_field

from schemas.base import (
    CamelCaseSchema,
    Echoed,
    ModelRequestSchema,
    ModelSchema,
    QuerySchema,
    RequestSchema,
    Text,
    max_length,
)
from schemas.profiles import ProfileSchema
from service.models import MAX_INT, Article

#: A page is at most this long, so one request cannot ask for the whole table.
MAX_PAGE = 100
#: At most this many tags on one article.
MAX_TAGS = 32

TAG_LIST_RULE = validate.Length(max=MAX_TAGS, error=f"must have at most {MAX_TAGS} tags")


def _tag_list(**kwargs: Any) -> fields.List[Any]:
    """A list of tag names, each 1 to 64 characters (the tags.name column)."""
    return fields.List(Text(allow_blank=False, validate=max_length(64)), validate=TAG_LIST_RULE, **kwargs)


class ArticleSchema(ModelSchema):
    """RealWorld ``Article``."""

    class Meta(ModelSchema.Meta):
        model = Article
        fields = (
            "slug",
            "title",
            "description",
            "body",
            "tag_list",
            "created_at",
            "updated_at",
            "favorited",
            "favorites_count",
            "author",
        )

    tag_list = fields.List(fields.String(), dump_only=True, required=True)
    favorited = fields.Boolean(dump_only=True, required=True)
    favorites_count = fields.Integer(dump_only=True, required=True)
    author = fields.Nested(ProfileSchema, dump_only=True, required=True)


class _ArticleEchoes:
    """The read-only fields of ``Article`` that clients send back when saving (ignored)."""

    slug = Echoed()
    created_at = Echoed()
    updated_at = Echoed()
    favorited = Echoed()
    favorites_count = Echoed()
    author = Echoed()


class NewArticleSchema(_ArticleEchoes, ModelRequestSchema):
    """RealWorld ``NewArticle``; ``tagList`` is optional and defaults to no tags."""

    class Meta(ModelRequestSchema.Meta):
        model = Article

    title = auto_field(required=True, allow_blank=False)
    description = auto_field(required=True, allow_blank=False)
    body = auto_field(required=True, allow_blank=False)
    tag_list = _tag_list(load_default=list)


class UpdateArticleSchema(_ArticleEchoes, ModelRequestSchema):
    """RealWorld ``UpdateArticle``: omitted fields stay; ``tagList: []`` removes every tag."""

    class Meta(ModelRequestSchema.Meta):
        model = Article

    title = auto_field(required=False, allow_blank=False)
    description = auto_field(required=False, allow_blank=False)
    body = auto_field(required=False, allow_blank=False)
    tag_list = _tag_list()


class PageQuerySchema(QuerySchema):
    """``limit`` (1 to 100, default 20) and ``offset`` (default 0)."""

    limit = fields.Integer(
        load_default=20, validate=validate.Range(min=1, max=MAX_PAGE, error="must be between {min} and {max}")
    )
    offset = fields.Integer(
        load_default=0, validate=validate.Range(min=0, max=MAX_INT, error="must be between {min} and {max}")
    )


class ArticleQuerySchema(PageQuerySchema):
    """Filters of ``GET /api/articles``, combined with AND."""

    tag = Text()
    author = Text()
    favorited = Text()


class NewArticleRequestSchema(RequestSchema):
    """``{"article": NewArticle}``."""

    article = fields.Nested(NewArticleSchema, required=True)


class UpdateArticleRequestSchema(RequestSchema):
    """``{"article": UpdateArticle}``."""

    article = fields.Nested(UpdateArticleSchema, required=True)


class SingleArticleResponseSchema(CamelCaseSchema):
    """``{"article": Article}``."""

    article = fields.Nested(ArticleSchema, required=True)


class MultipleArticlesResponseSchema(CamelCaseSchema):
    """``{"articles": [Article without body], "articlesCount": total matches}``."""

    articles = fields.List(fields.Nested(ArticleSchema, exclude=("body",)), required=True)
    articles_count = fields.Integer(required=True)
