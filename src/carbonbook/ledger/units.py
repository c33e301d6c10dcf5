"""How an asset's integer amount reads to a person: fen as yuan, milligrams as grams."""

from __future__ import annotations

from carbonbook.numbers import fen_to_yuan_text, mg_to_grams_text

# Units of the core assets; every other asset (registry units) counts whole tonnes.
# Practice cash (模拟资金, the exchange's practice market) is kept in fen like the real yuan.
UNITS = {"CNY": "fen", "CNY-PRACTICE": "fen", "POINT": "point", "CO2E_MG": "mg"}


def unit_of(asset: str) -> str:
    """The integer unit an asset is kept in."""
    return UNITS.get(asset, "t")


def display_amount(asset: str, amount: int) -> str:
    """An amount as people read it: "6703000.00" yuan, "1250.00" g, "13" points, "400000" t."""
    unit = unit_of(asset)
    if unit == "fen":
        return fen_to_yuan_text(amount)
    if unit == "mg":
        return mg_to_grams_text(amount)
    return str(amount)


def display_unit(asset: str) -> str:
    """The unit printed beside `display_amount`."""
    return {"fen": "yuan", "mg": "g", "point": "points"}.get(unit_of(asset), "t")
