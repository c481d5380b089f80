"""Markdown tables and number cells, shared by every printed table."""

from __future__ import annotations

from typing import Any

import numpy as np


def table(title: str, head: list[str], rows: list[list[str]]) -> None:
    """Print a Markdown table under a heading."""
    print(f"### {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(" --- " for _ in head) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def num(x: Any, fmt: str = ",.0f") -> str:
    """A number for a table cell; '-' for a missing or non-finite one."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "-"
    return format(x, fmt)
