"""`python -m mock_server` is `smmkit serve`."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(["serve", *__import__("sys").argv[1:]], prog_name="python -m mock_server")
