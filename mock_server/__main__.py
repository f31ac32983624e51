"""`python -m smmkit.mock_server` is `smmkit serve`."""

from __future__ import annotations

import sys

from smmkit.mock_server.serving.cli import serve

if __name__ == "__main__":
    serve(sys.argv[1:], prog_name="python -m smmkit.mock_server")
