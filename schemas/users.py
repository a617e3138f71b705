"""User and authentication shapes: one per direction (login, register, update, reply)."""

from __future__ import annotations

from marshmallow import fields, validate
from marshmallow_sqlalchemy import auto_field

from schemas.base import (
    CamelCaseSchema,
    Echoed,
    Email,
    FullMatch,
    ModelRequestSchema,
    ModelSchema,
    RequestSchema,
    Text,
    max_length,
)
from service.models import User

#: Passwords: a minimum length and no composition rules (NIST SP 800-63B); the
#: maximum only bounds the cost of hashing.
PASSWORD_RULE = [
    validate.Length(min=8, error="is too short (minimum is 8 characters)"),
    validate.Length(max=1024, error="is too long (maximum is 1024 characters)"),
]
#: Usernames appear in URLs (``/profiles/<username>``): letters, digits, ``_ . -``, at most
#: 64 characters (the column). Stated as validators so that the OpenAPI document shows them.
USERNAME_RULES = [
    max_length(64),
    FullMatch(r"^[A-Za-z0-9_.-]+$", error="may only contain letters, digits, '_', '.' and '-'"),
]


class UserSchema(ModelSchema):
    """RealWorld ``User``: the signed-in user, with a fresh token."""

    class Meta(ModelSchema.Meta):
        model = User
        fields = ("email", "token", "username", "bio", "image")

    token = fields.String(dump_only=True, required=True)


class LoginUserSchema(RequestSchema):
    """RealWorld ``LoginUser``. No format rules: a login only compares."""

    email = Text(required=True, allow_blank=False)
    password = Text(required=True, allow_blank=False)


class NewUserSchema(ModelRequestSchema):
    """RealWorld ``NewUser``."""

    class Meta(ModelRequestSchema.Meta):
        model = User

    username = auto_field(required=True, allow_blank=False, validate=USERNAME_RULES)
    email = auto_field(field_class=Email, required=True, allow_blank=False)
    password = Text(required=True, allow_blank=False, validate=PASSWORD_RULE)
    token = Echoed()  # read-only in User: accepted when echoed back, ignored


class UpdateUserSchema(ModelRequestSchema):
    """RealWorld ``UpdateUser``: every field optional; ``bio``/``image`` may be cleared."""

    class Meta(ModelRequestSchema.Meta):
        model = User

    username = auto_field(required=False, allow_blank=False, validate=USERNAME_RULES)
    email = auto_field(field_class=Email, required=False, allow_blank=False)
    password = Text(allow_blank=False, validate=PASSWORD_RULE)
    bio = auto_field()
    image = auto_field()
    token = Echoed()  # read-only in User: accepted when echoed back, ignored


class LoginUserRequestSchema(RequestSchema):
    """``{"user": LoginUser}``."""

    user = fields.Nested(LoginUserSchema, required=True)


class NewUserRequestSchema(RequestSchema):
    """``{"user": NewUser}``."""

    user = fields.Nested(NewUserSchema, required=True)


class UpdateUserRequestSchema(RequestSchema):
    """``{"user": UpdateUser}``."""

    user = fields.Nested(UpdateUserSchema, required=True)


class UserResponseSchema(CamelCaseSchema):
    """``{"user": User}``."""

    user = fields.Nested(UserSchema, required=True)
