"""The RealWorld error body, for the OpenAPI document."""

from __future__ import annotations

from marshmallow import fields

from schemas.base import CamelCaseSchema


class GenericErrorModelSchema(CamelCaseSchema):
    """``{"errors": {"<field or resource>": ["message", ...]}}``."""

    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
