"""Only the credit gate posts personal credits to the ledger (DESIGN.md, "Gates")."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "carbonbook"
SCANNED = ("personal", "api", "cli", "web")
# Modules that may ask the ledger to post, and why.
ALLOWED = {
    "personal/gate.py": "the credit gate: every personal credit and reversal",
    "personal/rewards.py": "points leaving people (redemption, expiry), never a credit",
}


def ledger_posts(source: str) -> list[int]:
    """Lines calling the ledger's posting functions: `x.post_in(...)`, or `.post(...)` on
    something named like a ledger (`self.ledger.post`, `Ledger(engine).post`)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        on_ledger = "ledger" in ast.unparse(node.func.value).lower()
        if node.func.attr == "post_in" or (node.func.attr == "post" and on_ledger):
            lines.append(node.lineno)
    return lines


def offenders() -> list[str]:
    found = []
    for package in SCANNED:
        for path in sorted((SRC / package).rglob("*.py")):
            name = path.relative_to(SRC).as_posix()
            if name in ALLOWED:
                continue
            found.extend(f"{name}:{line}" for line in ledger_posts(path.read_text("utf-8")))
    return found


def test_only_the_credit_gate_posts_personal_credits():
    assert offenders() == []


def test_the_scan_finds_a_side_door():
    side_door = "def credit(self, conn, batch):\n    return self.ledger.post_in(conn, batch)\n"
    assert ledger_posts(side_door) == [2]
    assert ledger_posts("Ledger(engine).post(batch)\nclient.post('/x')\n") == [1]
    assert ledger_posts("from carbonbook.personal.gate import CreditGate\n") == []
