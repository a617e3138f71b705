"""Profile: a user's public face, with the viewer's ``following`` flag."""

from __future__ import annotations

from marshmallow import fields

from schemas.base import CamelCaseSchema, ModelSchema
from service.models import User


class ProfileSchema(ModelSchema):
    """RealWorld ``Profile``."""

    class Meta(ModelSchema.Meta):
        model = User
        fields = ("username", "bio", "image", "following")

    following = fields.Boolean(dump_only=True, required=True)


class ProfileResponseSchema(CamelCaseSchema):
    """``{"profile": Profile}``."""

    profile = fields.Nested(ProfileSchema, required=True)
