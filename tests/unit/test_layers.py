"""The import rules that keep the house in order, read from every module's imports (ast).

- The logic (everything outside worker/ and the command modules) never imports Faust or the
  worker: it runs in tests and benchmarks without a broker.
- Serving never imports training: the worker runs with onnxruntime and numpy alone.
- Only the command modules import the dev tools (player/, broker/, the players' client); the
  tools may use each other, the engine never uses them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "radio_engine"
#: modules that implement commands: the only ones that may wire tools and the worker together
COMMANDS = {
    "radio_engine.cli",
    "radio_engine.demo",
    "radio_engine.worker.main",
    "radio_engine.verify.run",
}
#: the dev tools and the players' client: only commands (and the tools themselves) use them
TOOLS = ("radio_engine.player", "radio_engine.broker", "radio_engine.client")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def offending(rule: str) -> list[str]:
    """'module -> import' for every import that breaks the named rule."""
    bad = []
    for module, imported in MODULES.items():
        for target in sorted(imported):
            if RULES[rule](module, target):
                bad.append(f"{module} -> {target}")
    return bad


RULES = {
    "logic never imports faust or the worker": lambda m, t: (
        (not within(m, "radio_engine.worker") and m not in COMMANDS)
        and within(t, "faust", "radio_engine.worker")
    ),
    "serving never imports training": lambda m, t: (
        (not within(m, "radio_engine.training") and m not in COMMANDS)
        and within(t, "radio_engine.training", "torch")
    ),
    "only commands import the tools": lambda m, t: (
        (m not in COMMANDS and not within(m, *TOOLS)) and within(t, *TOOLS)
    ),
}


def test_the_rules_see_every_module() -> None:
    assert {"radio_engine.listens.pipeline", "radio_engine.worker.app"} <= set(MODULES)
    assert "faust" in MODULES["radio_engine.worker.transport"]  # imports are really read


@pytest.mark.parametrize("rule", sorted(RULES))
def test_import_rule(rule: str) -> None:
    assert offending(rule) == []


def test_a_broken_rule_is_reported() -> None:
    MODULES["radio_engine.selector.fake"] = {"radio_engine.training.train", "faust"}
    try:
        assert offending("serving never imports training") == [
            "radio_engine.selector.fake -> radio_engine.training.train"
        ]
        assert offending("logic never imports faust or the worker") == [
            "radio_engine.selector.fake -> faust"
        ]
    finally:
        del MODULES["radio_engine.selector.fake"]
