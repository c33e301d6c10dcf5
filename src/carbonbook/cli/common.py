"""What every command shares: the --database and --json options, output, and error exits.

A refused command prints one clear line to stderr and exits non-zero; nothing else is
printed, so scripts can rely on `--json` output being the only thing on stdout.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from carbonbook.errors import DomainError

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

# Exit codes: 1 = refused by a domain rule (bad input), 2 = usage (Typer's own), 3 = I/O.
EXIT_REFUSED = 1
EXIT_IO = 3

console = Console(stderr=True)  # messages and errors
out = Console()  # tables and results

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///PATH or postgresql+psycopg://...); "
        "default: $CARBONBOOK_DATABASE_URL or the embedded SQLite file.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def print_json(document: Any) -> None:
    """Print a JSON document with Chinese text kept readable."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2))
    sys.stdout.write("\n")


def fail(message: str, code: int = EXIT_REFUSED) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def run(action: Callable[[], T]) -> T:
    """Run a command body, turning refusals into one line and a non-zero exit."""
    try:
        return action()
    except DomainError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    except FileNotFoundError as exc:
        raise fail(f"FILE_NOT_FOUND: {exc.filename}", EXIT_IO) from None
    except (IsADirectoryError, PermissionError) as exc:
        raise fail(f"CANNOT_READ: {exc.filename}: {exc.strerror}", EXIT_IO) from None
