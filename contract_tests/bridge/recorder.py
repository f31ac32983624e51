"""Recordings: one JSON line per exchange, readable by the kit's `load_recorded`.

A line is `Exchange.to_record()` — the redacted request, the answer's status, headers and body,
the timing — with the verdict and what the upstream did under `extra`. The key was never in the
Exchange; the `Scrubber` also replaces every key the proxy has seen wherever it might still
appear (a panel echoing it in a body or a header), in its raw and URL-encoded forms, before any
text leaves memory.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import IO
from urllib.parse import quote, quote_plus

from smmkit.contract_tests.bridge.judge import Verdict
from smmkit.contract_tests.exchange import REDACTED, Exchange

MIN_SCRUBBED = 4  # shorter "keys" would scrub ordinary words out of bodies


class Scrubber:
    """Every key seen so far, and `text(s)` with each of them replaced by ``***``."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        if len(key) < MIN_SCRUBBED:
            return
        with self._lock:
            self._forms.update({key, quote(key, safe=""), quote_plus(key),
                                json.dumps(key)[1:-1]})

    def text(self, value: str) -> str:
        with self._lock:
            forms = sorted(self._forms, key=len, reverse=True)
        for form in forms:
            value = value.replace(form, REDACTED)
        return value


class Recorder:
    """Append-only JSON lines, flushed per exchange so a killed proxy loses at most one line."""

    def __init__(self, path: str | Path, scrub: Scrubber) -> None:
        self.path = Path(path)
        self.scrub = scrub
        self._stream: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, exchange: Exchange, verdict: Verdict, upstream: str) -> None:
        extra = {**exchange.extra, "verdict": verdict.to_json(), "upstream": upstream}
        record = dataclasses.replace(exchange, extra=extra).to_record()
        line = self.scrub.text(json.dumps(record, ensure_ascii=False))
        with self._lock:
            if self._stream is None:
                return
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
