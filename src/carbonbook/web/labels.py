"""Names for codes that come from data: assets, units, reasons, owner kinds, transfer kinds.

The ledger stores codes; pages print them through the `label` filter, which looks a code up in
the catalog and returns plain text that is escaped like any other value. IMPORTANT: never pass
data through `_()` in a template: with autoescaping on, Jinja2 marks the result of `_()` as
safe markup, and a reason code can come from a partner's file.

The tuples below only mark the codes for `pybabel extract`; a code without an entry reads as
itself.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, don't translate"
    return message


ASSETS = (
    N_("CNY"),
    N_("POINT"),
    N_("CO2E_MG"),
    N_("CEA-2024"),
    N_("BEA-2024"),
    N_("CCER"),
    N_("PCER-BJ-2025"),
)

UNITS = (N_("yuan"), N_("g"), N_("points"), N_("t"))

REASONS = (
    # personal behaviours (data/methodologies/personal)
    N_("shared_bike"),
    N_("shared_e_bike"),
    N_("metro"),
    N_("metro_checkin"),
    N_("e_bus"),
    N_("e_waybill"),
    N_("no_cutlery"),
    N_("lights_off"),
    N_("returned_box"),
    N_("daily_points"),
    # money, registry and exchange
    N_("deposit"),
    N_("withdrawal"),
    N_("payment"),
    N_("gift"),
    N_("allocation"),
    N_("issuance"),
    N_("surrender"),
    N_("cancellation"),
    N_("order"),
    N_("trade"),
    N_("post"),
    N_("void"),
    # registry operations and their states
    N_("issue"),
    N_("transfer"),
    N_("transfer-hold"),
    N_("clawback"),
    N_("returned"),
    N_("cancel"),
    N_("done"),
    N_("awaiting_approval"),
    N_("rejected"),
)

# Trading accounts, deposits and withdrawals, and the reconciliation's findings.
FUNDS = (
    N_("applied"),
    N_("failed"),
    N_("balanced"),
    N_("breaks"),
    N_("in_transit"),
    N_("timing"),
    N_("balance"),
    N_("unbacked"),
    N_("missing_at_bank"),
    N_("amount_mismatch"),
    N_("unknown_at_exchange"),
)

# The part of a ledger owner before the colon ("scheme:bj-green-life" -> "scheme").
OWNER_KINDS = (
    N_("person"),
    N_("scheme"),
    N_("bank"),
    N_("registry"),
    N_("regulator"),
    N_("entity"),
    N_("member"),
    N_("partner"),
    N_("platform"),
    N_("exchange"),
    N_("verifier"),
    N_("own account"),
    N_("unknown account"),
)

TRANSFER_KINDS = (N_("reserved"), N_("released"), N_("settled"))

# Emissions reports: states, history actions and line categories.
REPORT_WORDS = (
    N_("draft"),
    N_("submitted"),
    N_("returned"),
    N_("verified"),
    N_("locked"),
    N_("create"),
    N_("edit"),
    N_("submit"),
    N_("return"),
    N_("verify"),
    N_("lock"),
    N_("comment"),
    N_("combustion"),
    N_("process"),
    N_("fixed_carbon"),
    N_("electricity"),
    N_("heat"),
    N_("measured"),
    N_("default"),
    # allocation runs: phases and states
    N_("pre"),
    N_("final"),
    N_("computed"),
    N_("approved"),
    N_("issued"),
    # exchange orders
    N_("buy"),
    N_("sell"),
    N_("live"),
    N_("filled"),
    N_("cancelled"),
    N_("expired"),
    N_("reported"),
    N_("settled"),
    N_("withdrawn"),
    # check-ins
    N_("pending"),
    N_("not_credited"),
)
