"""smmkit: a stateful fake of the SMM panel API v2 and a contract-test kit for it.

One import root with three parts, each its own package (and its own folder in the repository):

    smmkit.mock_server     the fake panel: core (no HTTP), storage, web edge, serving, client
    smmkit.schemas         the contract: JSON Schemas for every request and response
    smmkit.contract_tests  the kit: checks, strategies, stateful model, runner, pytest plugin

Importing `smmkit` loads nothing else; the public names are in the parts' own packages.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
