"""A small Python client for the fake's control API (/_control/).

    panel = ControlClient("http://127.0.0.1:8080", token)
    panel.clock.advance("2h")
    panel.orders.force(order_id, status="Partial", remains=40)
    panel.faults.next("add", "lost_after_commit")
    panel.journal(action="add")

Errors from the control API raise `ControlAPIError` with the server's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests


class ControlAPIError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class _Part:
    def __init__(self, client: ControlClient) -> None:
        self._c = client


class Clock(_Part):
    def now(self) -> dict[str, Any]:
        return self._c.call("GET", "/clock")

    def advance(self, by: str | int) -> dict[str, Any]:
        return self._c.call("POST", "/clock/advance", {"by": by})

    def freeze(self) -> dict[str, Any]:
        return self._c.call("POST", "/clock/freeze")

    def resume(self) -> dict[str, Any]:
        return self._c.call("POST", "/clock/resume")

    def set(self, time: float | str) -> dict[str, Any]:
        return self._c.call("POST", "/clock/set", {"time": time})

    def speed(self, factor: float) -> dict[str, Any]:
        return self._c.call("POST", "/clock/speed", {"speed": factor})


class Accounts(_Part):
    def list(self) -> list[dict[str, Any]]:
        return self._c.call("GET", "/accounts")

    def get(self, key: str) -> dict[str, Any]:
        return self._c.call("GET", f"/accounts/{key}")

    def create(self, key: str, balance: str = "0", currency: str = "USD") -> dict[str, Any]:
        return self._c.call("POST", "/accounts",
                            {"key": key, "balance": str(balance), "currency": currency})

    def top_up(self, key: str, amount: str) -> dict[str, Any]:
        return self._c.call("PATCH", f"/accounts/{key}", {"top_up": str(amount)})

    def set_balance(self, key: str, balance: str) -> dict[str, Any]:
        return self._c.call("PATCH", f"/accounts/{key}", {"balance": str(balance)})

    def set_currency(self, key: str, currency: str) -> dict[str, Any]:
        return self._c.call("PATCH", f"/accounts/{key}", {"currency": currency})

    def disable(self, key: str) -> dict[str, Any]:
        return self._c.call("PATCH", f"/accounts/{key}", {"enabled": False})

    def enable(self, key: str) -> dict[str, Any]:
        return self._c.call("PATCH", f"/accounts/{key}", {"enabled": True})

    def delete(self, key: str) -> dict[str, Any]:
        return self._c.call("DELETE", f"/accounts/{key}")

    def reset(self, key: str) -> dict[str, Any]:
        return self._c.call("POST", f"/accounts/{key}/reset")


class Orders(_Part):
    def list(self, **filters: Any) -> list[dict[str, Any]]:
        return self._c.call("GET", "/orders", params=filters)

    def get(self, order_id: int) -> dict[str, Any]:
        return self._c.call("GET", f"/orders/{order_id}")

    def force(self, order_id: int, **changes: Any) -> dict[str, Any]:
        """status=, remains=, start_count=, outcome=, force=True."""
        return self._c.call("POST", f"/orders/{order_id}/force", changes)


class Refills(_Part):
    def list(self, **filters: Any) -> list[dict[str, Any]]:
        return self._c.call("GET", "/refills", params=filters)

    def force(self, refill_id: int, status: str, *, force: bool = False) -> dict[str, Any]:
        return self._c.call("POST", f"/refills/{refill_id}/force",
                            {"status": status, "force": force})


class Services(_Part):
    def list(self) -> list[dict[str, Any]]:
        return self._c.call("GET", "/services")

    def add(self, **service: Any) -> dict[str, Any]:
        return self._c.call("POST", "/services", service)

    def change(self, service_id: int, **changes: Any) -> dict[str, Any]:
        return self._c.call("PATCH", f"/services/{service_id}", changes)

    def remove(self, service_id: int) -> dict[str, Any]:
        return self._c.call("DELETE", f"/services/{service_id}")


class Faults(_Part):
    def list(self) -> list[dict[str, Any]]:
        return self._c.call("GET", "/faults")

    def add(self, kind: str, action: str = "*", **options: Any) -> dict[str, Any]:
        return self._c.call("POST", "/faults", {"kind": kind, "action": action, **options})

    def next(self, action: str, kind: str, count: int = 1, **options: Any) -> dict[str, Any]:
        """The next `count` requests for `action` fail with `kind`."""
        return self.add(kind, action, count=count, **options)

    def sometimes(self, action: str, kind: str, probability: float, **options: Any) -> dict:
        return self.add(kind, action, probability=probability, **options)

    def clear(self, fault_id: int | None = None) -> dict[str, Any]:
        return self._c.call("DELETE", "/faults" if fault_id is None else f"/faults/{fault_id}")


class ControlClient:
    """The control API of one running fake panel."""

    core: Any = None  # the in-process Panel, when the pytest plugin runs the fake in-process

    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base = url.rstrip("/")
        for suffix in ("/api/v2", "/_control"):
            if self.base.endswith(suffix):
                self.base = self.base[: -len(suffix)]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.clock = Clock(self)
        self.accounts = Accounts(self)
        self.orders = Orders(self)
        self.refills = Refills(self)
        self.services = Services(self)
        self.faults = Faults(self)

    def call(self, method: str, path: str, body: Any = None, *,
             params: dict[str, Any] | None = None) -> Any:
        response = self.session.request(
            method, f"{self.base}/_control{path}", params=params,
            json=body if body is not None else None, timeout=self.timeout)
        try:
            data = response.json()
        except ValueError:
            raise ControlAPIError(response.status_code, response.text[:200]) from None
        if response.status_code >= 400:
            message = data.get("error", "") if isinstance(data, dict) else str(data)
            raise ControlAPIError(response.status_code, message)
        return data

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        return self.call("GET", "/journal", params=filters)

    def nonconforming_requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Journal entries whose request broke the request schemas, each with its reasons in
        `request_violations` — what a client under test sent wrong."""
        entries = self.journal(limit=10_000, **filters)
        return [entry for entry in entries if not entry["request_conforms"]]

    def assert_client_conformed(self, **filters: Any) -> None:
        """Raise AssertionError listing every request that broke the request schemas."""
        bad = self.nonconforming_requests(**filters)
        if bad:
            lines = [f"{len(bad)} request(s) did not conform to the request schemas:"]
            lines += [f"- {e['action']} {e['params']}: {'; '.join(e['request_violations'])}"
                      for e in bad]
            raise AssertionError("\n".join(lines))

    def clear_journal(self) -> None:
        self.call("DELETE", "/journal")

    def reset(self, key: str | None = None) -> Any:
        return self.call("POST", "/reset", {"key": key} if key else {})

    def snapshot(self, path: str | Path | None = None) -> dict[str, Any]:
        data = self.call("GET", "/snapshot")
        if path is not None:
            Path(path).write_text(json.dumps(data), "utf-8")
        return data

    def restore(self, source: str | Path | dict[str, Any]) -> Any:
        data = source if isinstance(source, dict) else json.loads(Path(source).read_text("utf-8"))
        return self.call("POST", "/restore", data)
