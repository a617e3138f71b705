"""Schemathesis hooks for ``test_schemathesis.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

The fuzzer draws ``Idempotency-Key`` values from the header's schema and draws
the same short ones ("0") for different requests; the service rightly refuses
a key reused on a different request with 422, which the fuzzer cannot know
and reports as a valid request rejected. Every well-formed key is therefore
made unique before it is sent; malformed ones go as drawn (and get 400).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

from service.ops.idempotency import PATTERN

_WELL_FORMED = re.compile(PATTERN)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Positive cases only: editing a case makes schemathesis revalidate it, which would turn a
    # negative one (say, the Authorization header left out) positive. A negative case that reuses
    # a key may well get 422, which is what a negative case expects anyway.
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _WELL_FORMED.fullmatch(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
