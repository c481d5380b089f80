"""Runs the phases one by one: a failed phase is printed and recorded, and the others go on."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Run:
    """Results of the phases so far and the errors of those that failed."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one phase; a failure is printed and recorded, and the other phases go on."""
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        try:
            value = fn()
        except Exception as exc:
            traceback.print_exc()
            print(f"  {name} FAILED: {exc!r}", flush=True)
            self.errors[name] = repr(exc)
            return None
        if value is not None:
            self.results[name] = value
        return value
