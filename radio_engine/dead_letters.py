"""Dead-letter records: the original bytes, where they came from and why they were refused."""

from __future__ import annotations

import base64
import time

from radio_engine import schemas

#: original bytes kept in a dead letter: base64 makes them 4/3 bigger, and the letter must stay
#: under the worker producer's request limit (Faust's 1,000,000 bytes) and the broker's
VALUE_KEPT_MAX = 512 * 1024


def dead_letter(
    reason: str,
    error: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> bytes:
    """Encode one dead-letter message (schemas/dead-letter.v1.json).

    A value over VALUE_KEPT_MAX keeps its first VALUE_KEPT_MAX bytes, with `value_bytes` (its
    whole length) and `value_truncated`: a whole near-limit message would not fit once encoded.
    """
    value = value or b""
    record = {
        "reason": reason,
        "error": error[:2000],
        "topic": topic,
        "partition": int(partition),
        "offset": int(offset),
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "value_b64": base64.b64encode(value[:VALUE_KEPT_MAX]).decode(),
        "failed_at": time.time(),
    }
    if len(value) > VALUE_KEPT_MAX:
        record |= {"value_bytes": len(value), "value_truncated": True}
    return schemas.encode("dead_letter", record)
