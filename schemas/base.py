"""Schema building blocks: camelCase keys, strict input, RealWorld messages.

Model-backed schemas are generated from the ORM models by marshmallow-sqlalchemy
through :class:`ConduitModelConverter`, which maps every string column to
:class:`Text` (so NUL bytes and lone surrogates, which PostgreSQL cannot store,
are refused at the edge) and every timestamp to :class:`WireDateTime`.
Imports marshmallow, marshmallow-sqlalchemy and ``service.models`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate
from marshmallow_sqlalchemy import ModelConverter, SQLAlchemyAutoSchema, SQLAlchemySchema

from service.models import UTCDateTime

#: The message RealWorld clients show for a missing, empty or null required value.
BLANK = "can't be blank"
#: What "blank" means: nothing but ASCII white space. Spelled out (not ``\s``) so that
#: the OpenAPI pattern means the same to every regex engine that reads it.
_WHITESPACE = " \t\n\r\f\v"
#: Documented patterns: any text without NUL; the same with at least one non-blank character.
ANY_TEXT = "^[^\\u0000]*$"
NON_BLANK_TEXT = "^[^\\u0000]*[^\\u0000 \\t\\n\\r\\f\\v][^\\u0000]*$"


class FullMatch(validate.Regexp):
    """A regular expression the whole value must match (``$`` alone would let a final newline through).

    The pattern is written for ``re`` and JSON Schema alike (no ``\\w``, ``\\Z``), and
    apispec documents it as the field's ``pattern``.
    """

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


_TYPE_MESSAGES: dict[type[fields.Field[Any]], str] = {
    fields.String: "must be a string",
    fields.Integer: "must be an integer",
    fields.Boolean: "must be a boolean",
    fields.List: "must be a list",
}


class Text(fields.String):
    """A string that PostgreSQL and SQLite both store as given.

    :param allow_blank: when False, a value that is empty or only whitespace
        fails with "can't be blank".
    """

    default_error_messages = {"invalid": "must be a string", "required": BLANK, "null": BLANK}

    def __init__(self, *, allow_blank: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_blank = allow_blank
        # NUL and blank values are refused in _deserialize; these validators say so in the
        # OpenAPI document (minLength, and a pattern unless the field has its own).
        if not allow_blank:
            self.validators.insert(0, validate.Length(min=1, error=BLANK))
        if not any(isinstance(v, validate.Regexp) for v in self.validators):
            pattern = ANY_TEXT if allow_blank else NON_BLANK_TEXT
            self.validators.append(FullMatch(pattern, error=BLANK))

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("must be valid Unicode text") from None
        if not self.allow_blank and not text.strip(_WHITESPACE):
            raise ValidationError(BLANK)
        return text


#: An email address: a local part, ``@``, and a dotted domain (ASCII), in a form every
#: regex engine reads alike, so the OpenAPI document states exactly what is accepted.
EMAIL_PATTERN = (
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


class Email(Text):
    """An email address, validated and stored lower-case."""

    def __init__(self, **kwargs: Any) -> None:
        given = kwargs.pop("validate", None)
        extra = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
        super().__init__(validate=[FullMatch(EMAIL_PATTERN, error="is invalid"), *extra], **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


class WireDateTime(fields.DateTime):
    """UTC ISO-8601 with milliseconds and ``Z``: ``2026-01-02T03:04:05.678Z``."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ConduitModelConverter(ModelConverter):
    """Map the project's column types to the project's fields."""

    SQLA_TYPE_MAPPING = {
        **ModelConverter.SQLA_TYPE_MAPPING,
        sa.String: Text,
        sa.Text: Text,
        UTCDateTime: WireDateTime,
    }

    def _add_column_kwargs(self, kwargs: dict[str, Any], column: sa.Column[Any]) -> None:
        super()._add_column_kwargs(kwargs, column)
        kwargs["validate"] = [
            max_length(v.max) if isinstance(v, validate.Length) and v.max is not None else v for v in kwargs["validate"]
        ]


def max_length(limit: int) -> validate.Length:
    """A length limit with the RealWorld-style message."""
    return validate.Length(max=limit, error=f"is too long (maximum is {limit} characters)")


def camelcase(name: str) -> str:
    """``favorites_count`` → ``favoritesCount``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class CamelCaseSchema(Schema):
    """Python names stay snake_case; the wire is camelCase. Decided here, once."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)
        # One vocabulary of messages across every schema, as RealWorld clients expect.
        messages = {"required": BLANK, "null": BLANK}
        for kind, message in _TYPE_MESSAGES.items():
            if isinstance(field_obj, kind):
                messages["invalid"] = message
                break
        field_obj.error_messages = {**field_obj.error_messages, **messages}

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Read a value to dump: envelopes are dicts, everything else (records, models) has attributes.

        marshmallow's default tries ``obj[attr]`` and then ``getattr`` for every
        field of every object, and splits dotted names; answers are dumped on
        every read, so one direct lookup is worth its four lines.
        """
        if type(obj) is dict:
            return obj.get(attr, default)
        return getattr(obj, attr, default)


class Echoed(fields.Raw):
    """A read-only field of the resource, accepted in a request body and never applied.

    RealWorld clients send back what they read: the Angular editor saves an
    article with its ``slug``, ``createdAt``, ``author``... Refusing those keys
    would break them; applying them would let a client rewrite what only the
    service decides. So they are accepted whatever their value, dropped after
    loading, and documented as ``readOnly`` (JSON Schema: "attempts to modify
    the value are expected to be ignored"). Keys that are not part of the
    resource at all are still refused.
    """

    def __init__(self) -> None:
        super().__init__(
            allow_none=True,
            metadata={"readOnly": True, "description": "Read-only: may be echoed back, and is ignored."},
        )


class RequestSchema(CamelCaseSchema):
    """A request body: unknown keys are refused, so typos are not silently ignored.

    The resource's own read-only fields, declared :class:`Echoed`, are accepted and dropped.
    """

    error_messages = {"unknown": "is not a known field", "type": "must be an object"}

    class Meta:
        unknown = RAISE

    @post_load
    def _drop_echoed(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if not isinstance(self.fields.get(name), Echoed)}


class QuerySchema(CamelCaseSchema):
    """A query string: unknown parameters (cache-busters, tracking) are ignored."""

    class Meta:
        unknown = EXCLUDE


class ModelRequestSchema(SQLAlchemySchema[Any], RequestSchema):
    """A request body whose fields are generated from model columns with ``auto_field``.

    Length limits come from the column definitions; loading returns a dict.
    """

    class Meta:
        unknown = RAISE
        load_instance = False
        model_converter = ConduitModelConverter


class ModelSchema(SQLAlchemyAutoSchema, CamelCaseSchema):  # type: ignore[type-arg]
    """An output schema generated from a model; list the wire fields in ``Meta.fields``.

    Every field of an answer is always present (``null`` where empty), so every
    field is marked required: that is what the OpenAPI document then says.
    """

    class Meta:
        load_instance = False
        model_converter = ConduitModelConverter

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        super().on_bind_field(field_name, field_obj)
        field_obj.required = True
