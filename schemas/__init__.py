"""Marshmallow schemas: the wire shapes of the API, generated from the models.

A layer inside the service, kept top-level by requirement. Imports marshmallow,
marshmallow-sqlalchemy and ``service.models`` only; never ops, views or web.
"""
