"""The `carbonbook` command line (Typer + Rich)."""
