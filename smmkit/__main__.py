"""`python -m smmkit` is the `smmkit` command."""

from __future__ import annotations

from smmkit.cli import main

if __name__ == "__main__":
    main(prog_name="smmkit")
