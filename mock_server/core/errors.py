"""The error catalogue: every error the panel can answer, as a code plus its text per dialect.

Plain data and one exception hierarchy; no HTTP here. Texts follow docs/PROTOCOL.md §4 to the
character. Texts marked (choice) in docs/PROTOCOL.md live only here, so a dialect can change them.
"""

from __future__ import annotations

# code -> text in the canonical `perfectpanel` dialect. Quantity texts carry the service's
# limit, so they are format strings with `{limit}`.
CANONICAL_TEXTS: dict[str, str] = {
    "invalid_key": "Invalid API key",
    "incorrect_request": "Incorrect request",
    "incorrect_service": "Incorrect service ID",
    "incorrect_link": "Incorrect link",  # (choice)
    "min_quantity": "Quantity less than minimal {limit}",
    "max_quantity": "Quantity more than maximum {limit}",
    "not_enough_funds": "Not enough funds on balance",
    "active_order":  # noqa: E501 - the observed text, to the character
        "You have active order with this link. Please wait until order being completed.",
    "incorrect_order": "Incorrect order ID",
    "refill_not_found": "Refill not found",
    "refill_disabled": "Refill is disabled for this service",  # (choice)
    "refill_unavailable": "Refill is not available for this order",  # (choice)
    "cancel_unavailable": "Cancel is not available for this order",  # (choice)
}

# The seed template (api-docs/) differs only in the unknown-refill text.
SEED_TEXTS: dict[str, str] = {**CANONICAL_TEXTS, "refill_not_found": "Incorrect refill ID"}

# Untranslated i18n keys that many real Perfect Panel installs answer with (docs/PROTOCOL.md §4).
# Codes without an observed key keep their English text.
RAW_KEY_TEXTS: dict[str, str] = {
    **CANONICAL_TEXTS,
    "incorrect_service": "error.incorrect_service_id",
    "incorrect_link": "neworder.error.link",
    "min_quantity": "neworder.error.min_quantity",
    "max_quantity": "neworder.error.max_quantity",
    "not_enough_funds": "neworder.error.not_enough_funds",
    "active_order": "neworder.error.link_duplicate",
    "incorrect_order": "error.incorrect_order_id",
    "refill_not_found": "error.incorrect_refill_id",
}

TEXTS_BY_STYLE: dict[str, dict[str, str]] = {
    "perfectpanel": CANONICAL_TEXTS,
    "seed": SEED_TEXTS,
    "raw-keys": RAW_KEY_TEXTS,
}

# Transport-level answers for what is not the API at all (choice): JSON bodies with these codes.
HTTP_TEXTS: dict[int, str] = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
}


def error_text(code: str, style: str = "perfectpanel", *, limit: int | None = None) -> str:
    """The text a panel of `style` answers for error `code`."""
    template = TEXTS_BY_STYLE[style][code]
    return template.format(limit=limit) if limit is not None else template


class PanelError(Exception):
    """Root of every error the panel reports to a client as `{"error": ...}`.

    `code` picks the catalogue text; `limit` fills quantity texts; the exception message is the
    internal detail (it names the offending value) and is never sent on the wire.
    """

    code = "incorrect_request"

    def __init__(self, detail: str = "", *, limit: int | None = None) -> None:
        super().__init__(detail or self.code)
        self.limit = limit

    def text(self, style: str = "perfectpanel") -> str:
        return error_text(self.code, style, limit=self.limit)


class InvalidKey(PanelError):
    code = "invalid_key"


class IncorrectRequest(PanelError):
    code = "incorrect_request"


class IncorrectService(PanelError):
    code = "incorrect_service"


class IncorrectLink(PanelError):
    code = "incorrect_link"


class QuantityTooLow(PanelError):
    code = "min_quantity"


class QuantityTooHigh(PanelError):
    code = "max_quantity"


class NotEnoughFunds(PanelError):
    code = "not_enough_funds"


class ActiveOrder(PanelError):
    code = "active_order"


class IncorrectOrder(PanelError):
    code = "incorrect_order"


class RefillNotFound(PanelError):
    code = "refill_not_found"


class RefillDisabled(PanelError):
    code = "refill_disabled"


class RefillUnavailable(PanelError):
    code = "refill_unavailable"


class CancelUnavailable(PanelError):
    code = "cancel_unavailable"
