"""Imports point down only (DESIGN.md): a core never imports a service or an interface."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "carbonbook"
CORES = ("ledger", "methodology", "matching")
INTERFACES = ("api", "web", "cli")
SERVICES = ("personal", "mrv", "registry", "exchange", "market_data", "identity")


def imported_modules(package: str) -> list[tuple[Path, str]]:
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.append((path, node.module))
            elif isinstance(node, ast.Import):
                found.extend((path, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("core", CORES)
def test_a_core_package_imports_no_service_and_no_interface(core: str):
    forbidden = tuple(f"carbonbook.{p}" for p in (*INTERFACES, *SERVICES))
    offenders = [
        f"{path.relative_to(SRC)} imports {module}"
        for path, module in imported_modules(core)
        if module.startswith(forbidden)
    ]
    assert offenders == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_interface(service: str):
    if not (SRC / service).exists():
        pytest.skip(f"{service} not built yet")
    forbidden = tuple(f"carbonbook.{p}" for p in INTERFACES)
    offenders = [
        f"{path.relative_to(SRC)} imports {module}"
        for path, module in imported_modules(service)
        if module.startswith(forbidden)
    ]
    assert offenders == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "ledger"
    fake.mkdir()
    (fake / "bad.py").write_text("from carbonbook.api.app import create_api\n")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    assert imported_modules("ledger") == [(fake / "bad.py", "carbonbook.api.app")]
