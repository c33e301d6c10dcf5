"""`make bench` rewrites only its suites' blocks of bench/RESULTS.md, and reads the file when it
writes it, so notes added while a long run goes on are kept."""

from __future__ import annotations

from pathlib import Path

import bench.__main__ as runner
import pytest


def test_a_run_replaces_its_block_and_keeps_notes_written_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Benchmarks\n\n<!-- bench:ledger -->\nold figures\n<!-- /bench:ledger -->\n\nnotes\n",
        encoding="utf-8",
    )

    class Suite:
        @staticmethod
        def run(_args: object) -> str:
            # a note written into the file while the suite runs
            results.write_text(results.read_text(encoding="utf-8") + "a later note\n")
            return "new figures"

    monkeypatch.setattr(runner, "RESULTS", results)
    monkeypatch.setattr(runner.importlib, "import_module", lambda name: Suite)
    monkeypatch.setattr(runner, "_header", lambda argv: "# Benchmarks\n\n")
    runner.main(["--only", "ledger"])
    text = results.read_text(encoding="utf-8")
    assert "new figures" in text
    assert "old figures" not in text
    assert text.endswith("notes\na later note\n")
