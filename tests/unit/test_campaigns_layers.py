"""The campaigns floor plan: the code that writes emails (generation, batch) and a run's bookkeeping (runs) sit
below the services and the tasks, and never reach up to them, not even with an import inside a function."""

import ast
from pathlib import Path

import pytest

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"
ABOVE = ("campaigns.services", "campaigns.tasks", "campaigns.api", "campaigns.admin")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (`from campaigns import tasks` included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("module", ["generation", "batch", "runs"])
def test_the_workers_and_the_run_bookkeeping_never_import_the_services_or_the_tasks(module):
    upward = {name for name in imported(CAMPAIGNS / f"{module}.py") if name.startswith(ABOVE)}
    assert not upward, f"campaigns/{module}.py imports {sorted(upward)}"


def test_the_services_reach_the_tasks_only_to_dispatch_them():
    """Only inside functions (the tasks import the services), and nothing else above the services."""
    tree = ast.parse((CAMPAIGNS / "services.py").read_text())
    top = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not {name for name in top if name.startswith(ABOVE)}
    assert {name for name in imported(CAMPAIGNS / "services.py") if name.startswith(ABOVE)} <= {"campaigns.tasks"}
