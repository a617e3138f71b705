"""Business operations: ``(session, actor, **validated_fields)`` → ORM objects.

Ops may ``flush()`` but never ``commit()``: the dispatcher owns the transaction.
They raise ``ApiError`` and know nothing about HTTP requests. A read that is
one statement and nothing else is not an op: its view asks ``service.queries``.
"""
