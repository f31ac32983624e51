"""smmkit's fake SMM panel: a stateful, exact imitation of the SMM panel API v2.

The domain core (panel, lifecycle, catalog, money, clock, store) knows no HTTP; `app` and
`server` put it on the network.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
