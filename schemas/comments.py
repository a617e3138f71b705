"""Comment shapes."""

from __future__ import annotations

from marshmallow import fields
from marshmallow_sqlalchemy import auto_field

from schemas.base import CamelCaseSchema, Echoed, ModelRequestSchema, ModelSchema, RequestSchema
from schemas.profiles import ProfileSchema
from service.models import Comment


class CommentSchema(ModelSchema):
    """RealWorld ``Comment``."""

    class Meta(ModelSchema.Meta):
        model = Comment
        fields = ("id", "created_at", "updated_at", "body", "author")

    author = fields.Nested(ProfileSchema, dump_only=True, required=True)


class NewCommentSchema(ModelRequestSchema):
    """RealWorld ``NewComment``."""

    class Meta(ModelRequestSchema.Meta):
        model = Comment

    body = auto_field(required=True, allow_blank=False)
    # The read-only fields of Comment, accepted when echoed back and ignored.
    id = Echoed()
    created_at = Echoed()
    updated_at = Echoed()
    author = Echoed()


class NewCommentRequestSchema(RequestSchema):
    """``{"comment": NewComment}``."""

    comment = fields.Nested(NewCommentSchema, required=True)


class SingleCommentResponseSchema(CamelCaseSchema):
    """``{"comment": Comment}``."""

    comment = fields.Nested(CommentSchema, required=True)


class MultipleCommentsResponseSchema(CamelCaseSchema):
    """``{"comments": [Comment]}``."""

    comments = fields.List(fields.Nested(CommentSchema), required=True)
