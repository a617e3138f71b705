"""Tags shape."""

from __future__ import annotations

from marshmallow import fields

from schemas.base import CamelCaseSchema


class TagsResponseSchema(CamelCaseSchema):
    """``{"tags": [name, ...]}``."""

    tags = fields.List(fields.String(), required=True)
