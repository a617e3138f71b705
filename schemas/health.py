"""Health-check shapes."""

from __future__ import annotations

from marshmallow import fields

from schemas.base import CamelCaseSchema


class HealthSchema(CamelCaseSchema):
    """``{"status": "ok"}``."""

    status = fields.String(required=True)


class ReadinessSchema(CamelCaseSchema):
    """``{"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}``."""

    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
