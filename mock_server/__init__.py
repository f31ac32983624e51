"""smmkit's fake SMM panel: a stateful, exact imitation of the SMM panel API v2.

Layers, each a sub-package that imports only from the ones below it (ARCHITECTURE.md):

    storage   SQLite: connections, transactions, the journal
    core      the domain: panel, lifecycle, catalogue, money, clock, faults, steering — no HTTP
    web       the HTTP edge: /api/v2, the control API, the wire format (dialects)
    serving   configuration from the command line, gunicorn / granian, workers
    client    the control client and `smmkit ctl` (imports nothing of the fake)

The public face, loaded on first use: `create_app`, `Panel`, `Config`, `build_panel`,
`start_background`, `ControlClient`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from smmkit import __version__

_EXPORTS = {
    "create_app": "web.app", "Panel": "core.panel", "Config": "core.config",
    "build_panel": "core.config", "start_background": "serving.server",
    "ControlClient": "client.control", "ControlAPIError": "client.control",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
