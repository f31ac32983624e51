"""Keep compiled bytecode between runs, in build/pycache — also where PYTHONDONTWRITEBYTECODE
is set (as on the team's machines), which otherwise makes every Python process of the suite
compile every module it imports from source again, and pytest re-rewrite the asserts of
Hypothesis and every other plugin's package (measured: collecting the suite took 6.4 s of CPU
per process, 2.5 s with the cache; the suite starts a process per xdist worker, and many more
for `smmkit serve`, the CLI and child pytest runs).

The cache lives under build/ (ignored by git; Python's `PYTHONPYCACHEPREFIX`), never beside
the sources: the tree and site-packages stay as clean as the variable asks. Child processes
inherit it through the environment. Imported first by tests/conftest.py, before anything heavy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PREFIX = Path(__file__).resolve().parent.parent / "build" / "pycache"

# A prefix the user chose (PYTHONPYCACHEPREFIX) is kept.
sys.pycache_prefix = os.environ.setdefault("PYTHONPYCACHEPREFIX", str(PREFIX))
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
