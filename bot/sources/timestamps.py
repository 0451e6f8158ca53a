"""ISO 8601 timestamps of the providers' payloads as the store keeps them: naive UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_utc(
    value: Any, what: str, error: type[Exception], *, keep_fraction: bool = False
) -> datetime:
    """``2019-05-15T15:20:33Z``, ``...+02:00`` or ``...000-0800`` as a naive UTC datetime, at
    second precision unless ``keep_fraction``; a value without an offset is taken as UTC.
    Anything else raises ``error`` with a message naming ``what``."""
    if not isinstance(value, str):
        raise error(f"{what}: expected an ISO 8601 timestamp, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00", 1))
    except ValueError:
        raise error(f"{what}: not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed if keep_fraction else parsed.replace(microsecond=0)
