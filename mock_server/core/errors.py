"""The error catalogue: every error the panel can answer, as a code plus its text per dialect.

The texts are the contract's (smmkit.schemas.contract, to the character of docs/PROTOCOL.md §4);
this module maps them to one exception hierarchy. No HTTP here.
"""

from __future__ import annotations

from smmkit.schemas import contract

# code -> text template per error style. The catalogue is contract data (docs/PROTOCOL.md §4), kept
# once in smmkit.schemas (`_data/contract.json`), so clients in any language read the same texts;
# quantity texts carry the service's limit as `{limit}`. Texts marked (choice) in docs/PROTOCOL.md
# are the fake's choice and can change there.
TEXTS_BY_STYLE: dict[str, dict[str, str]] = {
    style: contract.error_texts(style) for style in contract.ERROR_STYLES}
CANONICAL_TEXTS: dict[str, str] = TEXTS_BY_STYLE["perfectpanel"]
# The seed template (api-docs/) differs only in the unknown-refill text.
SEED_TEXTS: dict[str, str] = TEXTS_BY_STYLE["seed"]
# Untranslated i18n keys that many real Perfect Panel installs answer with; codes without an
# observed key keep their English text.
RAW_KEY_TEXTS: dict[str, str] = TEXTS_BY_STYLE["raw-keys"]

# Transport-level answers for what is not the API at all (choice): JSON bodies with these codes.
HTTP_TEXTS: dict[int, str] = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
}


error_text = contract.error_text  # the text a panel of `style` answers for error `code`


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
