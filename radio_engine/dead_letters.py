"""Dead-letter records: the original bytes, where they came from and why they were refused."""

from __future__ import annotations

import base64
import time

from radio_engine import schemas


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
    """Encode one dead-letter message (schemas/dead-letter.v1.json)."""
    record = {
        "reason": reason,
        "error": error[:2000],
        "topic": topic,
        "partition": int(partition),
        "offset": int(offset),
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "value_b64": base64.b64encode(value or b"").decode(),
        "failed_at": time.time(),
    }
    return schemas.encode("dead_letter", record)
