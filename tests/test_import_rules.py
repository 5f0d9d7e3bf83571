"""The one-way import rule: tasks → integration → connectors, checked by walking the source."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "integration", "tasks")


@dataclass(frozen=True)
class Rule:
    applies_to: str  # module prefix
    forbidden: tuple[str, ...]
    unless_under: tuple[str, ...] = ()  # module prefixes exempt from this rule

    def breaks(self, module: str, imported: str) -> bool:
        if not _within(module, self.applies_to) or any(
            _within(module, p) for p in self.unless_under
        ):
            return False
        return any(_within(imported, f) for f in self.forbidden)


RULES = (
    Rule("connectors", ("integration", "tasks", "celery", "sqlalchemy", "redis", "alembic")),
    Rule("connectors", ("flask", "werkzeug"), unless_under=("connectors.sandbox",)),
    Rule("integration", ("tasks", "celery", "kombu")),
    Rule("integration", ("flask", "werkzeug"), unless_under=("integration.web",)),
)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> list[str]:
    """Absolute names of every module imported by `source` (relative imports resolved)."""
    names = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                names.append(".".join([*base, node.module] if node.module else base))
            else:
                names.append(node.module or "")
    return names


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    return [
        f"{module} imports {name}"
        for name in imports_of(source, module, is_package)
        for rule in RULES
        if rule.breaks(module, name)
    ]


def all_modules() -> list[tuple[str, Path]]:
    return [
        (module_name(path), path)
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def test_every_package_is_walked() -> None:
    modules = {m for m, _ in all_modules()}
    assert {"connectors.base", "integration.pipeline", "tasks.app"} <= modules


def test_source_tree_follows_the_import_rules() -> None:
    found = []
    for module, path in all_modules():
        found += violations(path.read_text(), module, path.name == "__init__.py")
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("connectors.salesforce.client", "from integration.store import Store", True),
        ("connectors.hubspot.connector", "import sqlalchemy.orm", True),
        ("connectors.hubspot.connector", "from flask import Flask", True),
        ("connectors.sandbox.app", "from flask import Flask", False),
        ("integration.pipeline", "from tasks.app import app", True),
        ("integration.pipeline", "import celery", True),
        ("integration.cli", "from flask import Flask", True),
        ("integration.web", "from flask import Flask", False),
        ("integration.store.db", "from ..pipeline import run_cycle", False),
        ("connectors.salesforce.client", "from ...integration import config", True),
        ("tasks.pipeline", "from integration.pipeline import run_cycle", False),
    ],
)
def test_checker_catches_what_it_should(module: str, source: str, broken: bool) -> None:
    assert bool(violations(source, module)) is broken
