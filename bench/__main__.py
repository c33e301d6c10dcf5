"""`make bench` / `python -m bench`: run the benchmarks and rewrite bench/RESULTS.md.

Each suite owns one block of RESULTS.md between `<!-- bench:NAME -->` markers, so running
one suite (`--only ledger`) keeps the others' last figures. Add a suite by adding a module
with `run(args) -> str` (Markdown) to SUITES.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys
from datetime import UTC, datetime

from bench.common import ROOT, git_revision, machine, pg_url, pg_version

SUITES = {
    "ledger": "bench.ledger",
    "mrv": "bench.mrv",
    "http_orders": "bench.http_orders",
    "ingest": "bench.ingest",
    "matching": "bench.matching",
}
RESULTS = ROOT / "bench" / "RESULTS.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", choices=sorted(SUITES), action="append")
    parser.add_argument("--quick", action="store_true", help="10x smaller: a smoke run")
    parser.add_argument("--transfers", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000, help="personal events")
    parser.add_argument("--http-orders", type=int, default=20_000, help="orders over HTTP")
    parser.add_argument("--reports", type=int, default=10_000, help="MRV reports and entities")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.transfers //= 10
        args.accounts //= 10
        args.reports //= 10
        args.http_orders //= 10
        args.events //= 10
        args.messages //= 10
    blocks = {}
    for name in args.only or list(SUITES):
        blocks[name] = importlib.import_module(SUITES[name]).run(args)
        print(blocks[name])
    if not args.no_write:
        # Read only now: notes written into the file while the suites ran are kept.
        text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
        for name, block in blocks.items():
            text = _replace_block(text, name, block)
        RESULTS.write_text(_header(argv) + _strip_header(text), encoding="utf-8")
        print(f"wrote {RESULTS}")


def _header(argv: list[str] | None) -> str:
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    url = pg_url()
    pg = pg_version(url) if url else "no PostgreSQL"
    return (
        "# Benchmarks\n\n"
        f"- machine: {machine()}\n"
        f"- database server: {pg}\n"
        f"- last run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, commit {git_revision()}\n"
        f"- command: `make bench` (`{command.strip()}`)\n"
        "- the machine has 2 cores shared with whatever else runs; rates are wall-clock.\n\n"
    )


def _strip_header(text: str) -> str:
    first = text.find("<!-- bench:")
    return text[first:] if first >= 0 else ""


def _replace_block(text: str, name: str, block: str) -> str:
    wrapped = f"<!-- bench:{name} -->\n{block.strip()}\n<!-- /bench:{name} -->\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->\n?", re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: wrapped, text)
    return text + ("\n" if text and not text.endswith("\n\n") else "") + wrapped


if __name__ == "__main__":
    main()
