"""Architecture: only the trade gate settles trades. No module but exchange/gate.py calls a
settlement hook (`settle_in`, `settle_batch`, a gate's `settle`) or writes a row into the
trades table, so no trading path can skip the gate's checks or keep its trade out of market
data."""

from __future__ import annotations

import ast
from pathlib import Path

import carbonbook

SRC = Path(carbonbook.__file__).parent
GATE = SRC / "exchange" / "gate.py"
SETTLE = {"settle_in", "settle_batch"}  # the registry's hook, under its names
# The demo seeds two sales from before the exchange opened, straight on the registry (not
# trades on the tape); the integrator may route them through the gate (see the report).
SEEDS = {SRC / "cli" / "demo.py"}


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            target = node.func.value
            via_gate = name == "settle" and (
                (isinstance(target, ast.Attribute) and target.attr == "gate")
                or (isinstance(target, ast.Name) and target.id == "self" and path == GATE)
            )
            if name in SETTLE or via_gate:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} calls {name}")
            if name == "insert" and isinstance(target, ast.Name) and target.id == "exchange_trades":
                found.append(f"{path.relative_to(SRC)}:{node.lineno} inserts a trade")
    return found


def test_only_the_gate_posts_trade_settlements_and_writes_trades():
    offences = [
        o
        for path in sorted(SRC.rglob("*.py"))
        if path != GATE and path not in SEEDS
        for o in _offences(path)
    ]
    assert offences == []


def test_the_gate_does_both():
    assert _offences(GATE)  # the test looks for what the gate really does
