"""Migrations import no live project code: what they need is copied into them
(or into ``logs/migrations/_frozen.py``, never edited afterwards), so a later
change to the code cannot change what an old migration does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps

PROJECT_PACKAGES = {"accounts", "logs", "usagelogs_site", "bench", "tests"}
FROZEN = "logs.migrations._frozen"


def migration_files() -> list[Path]:
    return sorted(
        path
        for app in ("accounts", "logs")
        for path in (Path(apps.get_app_config(app).path) / "migrations").glob("*.py")
        if path.name != "__init__.py"
    )


def project_imports(path: Path) -> list[str]:
    """The project modules ``path`` imports (a frozen copy is not live code)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):
            names = ["(relative) " + (node.module or "")]
        else:
            continue
        found += [
            name
            for name in names
            if (name.split(".")[0] in PROJECT_PACKAGES or name.startswith("(relative)"))
            and name != FROZEN
        ]
    return found


def test_there_are_migrations_to_check():
    names = {path.name for path in migration_files()}
    assert {"0001_initial.py", "0002_partition_by_month.py"} <= names


@pytest.mark.parametrize(
    "path", migration_files(), ids=lambda path: f"{path.parent.parent.name}/{path.name}"
)
def test_a_migration_imports_no_live_project_code(path):
    assert project_imports(path) == []


def test_the_frozen_copies_import_no_live_project_code():
    frozen = Path(apps.get_app_config("logs").path) / "migrations" / "_frozen.py"

    assert project_imports(frozen) == []
