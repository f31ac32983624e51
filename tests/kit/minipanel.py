"""A minimal SMM panel API v2 written for the kit's tests from docs/PROTOCOL.md alone — independent
of the fake's code — with one switch per behavioural defect.

`MiniPanel()` is correct: the kit must pass it in both profiles. `MiniPanel(defect="...")` seeds
exactly one defect (see DEFECTS). It keeps its own manual clock, moved through the same
control-API route as our fake (`POST /_control/clock/advance` with a Bearer token), so
`smmkit check --admin-token` drives it too.
"""

from __future__ import annotations

import json
import threading
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from werkzeug.wrappers import Request, Response

KEY, OTHER, TOKEN = "mini-key-1", "mini-key-2", "mini-admin"
FIVE = Decimal("0.00001")
TEXT = {"key": "Invalid API key", "request": "Incorrect request",
        "service": "Incorrect service ID", "link": "Incorrect link",
        "min": "Quantity less than minimal {}", "max": "Quantity more than maximum {}",
        "funds": "Not enough funds on balance", "order": "Incorrect order ID",
        "refill": "Refill not found", "no_refill": "Refill is disabled for this service",
        "refill_later": "Refill is not available for this order",
        "no_cancel": "Cancel is not available for this order"}
# service id -> (name, type, rate, min, max, refill, cancel, how it ends)
SERVICES = {
    1: ("Followers", "Default", "0.50", 10, 5000, True, True, "complete"),
    2: ("Views", "Default", "0.20", 10, 9000, False, False, "partial"),
    3: ("Mentions", "Mentions", "0.90", 10, 1000, False, False, "complete"),
    4: ("Likes", "Default", "0.10", 10, 20000, False, True, "complete"),
}
DEFECTS = ("partial_no_refund", "final_flips", "foreign_visible", "garbage_500",
           "negative_balance", "remains_grow", "accept_invalid")


def money(amount: Decimal) -> str:
    text = format(amount.quantize(FIVE, ROUND_HALF_UP), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class MiniPanel:
    def __init__(self, defect: str | None = None, balance: str = "1") -> None:
        assert defect is None or defect in DEFECTS, defect
        self.defect = defect
        self.lock = threading.Lock()
        self.now = 0.0
        self.balances = {KEY: Decimal(balance), OTHER: Decimal("10")}
        self.orders: dict[int, dict[str, Any]] = {}
        self.refills: dict[int, dict[str, Any]] = {}
        self.next_order, self.next_refill = 100, 500

    # ------------------------------------------------------------------ lifecycle
    def view(self, order: dict[str, Any]) -> tuple[str, int]:
        """(status, remains) at the current time; a final status is stored once reached."""
        if order.get("final"):
            status, remains = order["final"]
            if self.defect == "final_flips" and status == "Completed" and order["polls"] >= 2:
                return "In progress", 0
            return status, remains
        age = self.now - order["created"]
        quantity = order["quantity"]
        if age < 30:
            return "Pending", quantity
        delivered = min(quantity, int((age - 30) / 60 * 4))  # 4 units a minute
        if order["ends"] == "partial" and delivered >= quantity // 2:
            self.finish(order, "Partial", quantity - quantity // 2)
            return order["final"]
        if delivered >= quantity:
            self.finish(order, "Completed", 0)
            return order["final"]
        remains = quantity - delivered
        if self.defect == "remains_grow" and order["polls"] % 2:
            remains = min(quantity, remains + 5)
        return "In progress", remains

    def finish(self, order: dict[str, Any], status: str, remains: int) -> None:
        order["final"] = (status, remains)
        if status == "Completed":
            return
        refund = (order["charge"] * remains / order["quantity"]).quantize(FIVE, ROUND_HALF_UP)
        if status == "Canceled":
            refund = order["charge"]
        order["kept"] = order["charge"] - refund
        if self.defect != "partial_no_refund":
            self.balances[order["key"]] += refund

    # ------------------------------------------------------------------ actions
    def services(self, key: str, p: dict[str, str]) -> Any:
        return [{"service": sid, "name": s[0], "type": s[1], "category": "Mini", "rate": s[2],
                 "min": str(s[3]), "max": str(s[4]), "refill": s[5], "cancel": s[6]}
                for sid, s in SERVICES.items()]

    def balance(self, key: str, p: dict[str, str]) -> Any:
        return {"balance": money(self.balances[key]), "currency": "USD"}

    def add(self, key: str, p: dict[str, str]) -> Any:
        raw_service, raw_quantity = p.get("service", ""), p.get("quantity", "")
        lenient = self.defect == "accept_invalid"
        if self.defect == "garbage_500" and raw_quantity and not raw_quantity.isdigit():
            raise RuntimeError("int() of a quantity")
        if not raw_service.isdigit() or int(raw_service) not in SERVICES:
            if not lenient:
                return {"error": TEXT["service"]}
            raw_service = "1" if not raw_service.isdigit() or int(raw_service) not in \
                SERVICES else raw_service
        service = SERVICES[int(raw_service)]
        if not p.get("link") and not lenient:
            return {"error": TEXT["link"]}
        if service[1] == "Mentions" and not p.get("usernames") and not lenient:
            return {"error": TEXT["request"]}
        if lenient:  # like PHP's intval: leading digits, else the minimum
            digits = "".join(ch for ch in raw_quantity.split(".")[0] if ch.isdigit())[:18]
            quantity = int(digits) if digits and not raw_quantity.startswith("-") else service[3]
        else:
            if not raw_quantity.isdigit() or len(raw_quantity) > 12:
                return {"error": TEXT["request"]}
            quantity = int(raw_quantity)
            if quantity < service[3]:
                return {"error": TEXT["min"].format(service[3])}
            if quantity > service[4]:
                return {"error": TEXT["max"].format(service[4])}
        charge = (Decimal(service[2]) * quantity / 1000).quantize(FIVE, ROUND_HALF_UP)
        if charge > self.balances[key] and self.defect not in ("negative_balance", "accept_invalid"):
            return {"error": TEXT["funds"]}
        self.balances[key] -= charge
        self.next_order += 1
        self.orders[self.next_order] = {"key": key, "service": int(raw_service),
                                        "quantity": quantity, "charge": charge,
                                        "created": self.now, "ends": service[7], "polls": 0}
        return {"order": self.next_order}

    def mine(self, key: str, ident: str) -> dict[str, Any] | None:
        order = self.orders.get(int(ident)) if ident.strip().isdigit() else None
        if order is None or (order["key"] != key and self.defect != "foreign_visible"):
            return None
        return order

    def one_status(self, key: str, ident: str) -> Any:
        order = self.mine(key, ident)
        if order is None:
            return {"error": TEXT["order"]}
        status, remains = self.view(order)
        order["polls"] += 1
        kept = order.get("kept", order["charge"]) if status in ("Partial", "Canceled") \
            else order["charge"]
        return {"charge": money(kept), "start_count": "0", "status": status,
                "remains": str(remains), "currency": "USD"}

    def status(self, key: str, p: dict[str, str]) -> Any:
        if "orders" in p:
            ids = [i.strip() for i in p["orders"].split(",") if i.strip()]
            if len(ids) > 100:
                return {"error": TEXT["request"]}
            return {i: self.one_status(key, i) for i in ids}
        return self.one_status(key, p.get("order", ""))

    def cancel(self, key: str, p: dict[str, str]) -> Any:
        ids = [i.strip() for i in p.get("orders", p.get("order", "")).split(",") if i.strip()]
        if not ids or len(ids) > 100:
            return {"error": TEXT["request"]}
        out = []
        for ident in ids:
            order = self.mine(key, ident)
            entry: Any = 1
            if order is None:
                entry = {"error": TEXT["order"]}
            elif not SERVICES[order["service"]][6] or self.view(order)[0] in (
                    "Completed", "Partial", "Canceled"):
                entry = {"error": TEXT["no_cancel"]}
            else:
                self.finish(order, "Canceled", order["quantity"])
            out.append({"order": int(ident) if ident.isdigit() else 0, "cancel": entry})
        return out

    def one_refill(self, key: str, ident: str) -> Any:
        order = self.mine(key, ident)
        if order is None:
            return {"error": TEXT["order"]}
        if not SERVICES[order["service"]][5]:
            return {"error": TEXT["no_refill"]}
        if self.view(order)[0] not in ("Completed", "Partial") or any(
                r["order"] == int(ident) for r in self.refills.values()):
            return {"error": TEXT["refill_later"]}
        self.next_refill += 1
        self.refills[self.next_refill] = {"key": key, "order": int(ident)}
        return self.next_refill

    def refill(self, key: str, p: dict[str, str]) -> Any:
        if "orders" in p:
            ids = [i.strip() for i in p["orders"].split(",") if i.strip()]
            return [{"order": int(i) if i.isdigit() else 0, "refill": self.one_refill(key, i)}
                    for i in ids]
        answer = self.one_refill(key, p.get("order", ""))
        return answer if isinstance(answer, dict) else {"refill": str(answer)}

    def one_refill_status(self, key: str, ident: str) -> Any:
        refill = self.refills.get(int(ident)) if ident.strip().isdigit() else None
        if refill is None or (refill["key"] != key and self.defect != "foreign_visible"):
            return {"error": TEXT["refill"]}
        return "Completed"

    def refill_status(self, key: str, p: dict[str, str]) -> Any:
        if "refills" in p:
            ids = [i.strip() for i in p["refills"].split(",") if i.strip()]
            return [{"refill": int(i) if i.isdigit() else 0,
                     "status": self.one_refill_status(key, i)} for i in ids]
        answer = self.one_refill_status(key, p.get("refill", ""))
        return answer if isinstance(answer, dict) else {"status": answer}

    # ------------------------------------------------------------------ WSGI
    def answer(self, request: Request) -> Any:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        if request.is_json:
            body = request.get_json(silent=True)
            params.update({k: str(v) for k, v in (body or {}).items()}
                          if isinstance(body, dict) else {})
        key = params.get("key", "")
        if key not in self.balances:
            return {"error": TEXT["key"]}
        handler = getattr(self, params.get("action", ""), None)
        if params.get("action") not in ("services", "balance", "add", "status", "cancel",
                                        "refill", "refill_status") or handler is None:
            return {"error": TEXT["request"]}
        return handler(key, params)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            if request.path == "/_control/clock/advance":
                if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                    response = Response('{"error": "unauthorized"}', 401,
                                        mimetype="application/json")
                else:
                    self.now += float((request.get_json(silent=True) or {}).get("by", 0))
                    response = Response(json.dumps({"now": self.now}),
                                        mimetype="application/json")
            elif request.path.rstrip("/") != "/api/v2":
                response = Response('{"error": "Not found"}', 404, mimetype="application/json")
            else:
                try:
                    body = json.dumps(self.answer(request), separators=(",", ":"))
                    response = Response(body, mimetype="application/json")
                except RuntimeError:
                    response = Response("<html><body><h1>500 Internal Server Error</h1>"
                                        "Traceback (most recent call last): ...</body></html>",
                                        500, mimetype="text/html")
        return response(environ, start_response)
