"""Serial-number blocks: which serials move when tonnes move. Pure.

Every issuance creates one block of consecutive serials. Moving `q` tonnes out of an account
takes its blocks lowest serial first; the last block taken is split so that exactly `q`
serials move and the rest stay (the EU and UNDP registries split blocks the same way). The
sum of an account's blocks is always its ledger balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True, slots=True)
class Block:
    """Serials `start`..`end` (inclusive) of one asset, from one issuance."""

    id: int
    issuance: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Take:
    """What moving tonnes does to the sender's blocks.

    `whole` move as they are; `split`, when set, is (block, n): the block's first n serials
    move as a new block and the block keeps the rest.
    """

    whole: tuple[Block, ...]
    split: tuple[Block, int] | None

    @property
    def quantity(self) -> int:
        return sum(b.size for b in self.whole) + (self.split[1] if self.split else 0)

    def moved_ranges(self) -> list[tuple[int, int, int]]:
        """(issuance, start, end) of every serial range that moves, lowest first."""
        out = [(b.issuance, b.start, b.end) for b in self.whole]
        if self.split is not None:
            block, n = self.split
            out.append((block.issuance, block.start, block.start + n - 1))
        return out


def take(blocks: Sequence[Block], quantity: int) -> Take:
    """Take `quantity` serials from `blocks`, lowest serial first.

    The caller has already checked the holdings (the ledger's balance); a shortfall here
    means blocks and ledger disagree, which `Registry.verify()` would name.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    whole: list[Block] = []
    left = quantity
    for block in sorted(blocks, key=lambda b: b.start):
        if block.size <= left:
            whole.append(block)
            left -= block.size
            if left == 0:
                return Take(tuple(whole), None)
        else:
            return Take(tuple(whole), (block, left))
    raise ValueError(f"blocks hold {quantity - left} serials, {quantity} asked")


def take_in_turn(blocks: Sequence[Block], quantities: Sequence[int]) -> list[Take]:
    """Several takes from one account's blocks, one after the other, as `take` would make them
    if each were applied before the next: a block split by one take is offered, shortened, to
    the next. The set-wise retirement (a deadline settlement) moves many holdings this way in
    one pass over the blocks.

    Returns one `Take` per quantity, in order; a split names the block as it stood then.
    """
    left = sorted(blocks, key=lambda b: b.start)
    takes: list[Take] = []
    for quantity in quantities:
        plan = take(left, quantity)
        takes.append(plan)
        gone = {b.id for b in plan.whole}
        left = [b for b in left if b.id not in gone]
        if plan.split is not None:
            block, n = plan.split
            left = [
                Block(b.id, b.issuance, b.start + n, b.end) if b.id == block.id else b for b in left
            ]
    return takes


def gaps_and_overlaps(ranges: Sequence[tuple[int, int]], issued: int) -> list[str]:
    """Problems in one asset's blocks: every serial 1..issued must be in exactly one block."""
    problems: list[str] = []
    expected = 1
    for start, end in sorted(ranges):
        if end < start:
            problems.append(f"block {start}-{end} is empty or reversed")
            continue
        if start > expected:
            problems.append(f"serials {expected}-{start - 1} are in no block")
        elif start < expected:
            problems.append(f"serials {start}-{min(end, expected - 1)} are in two blocks")
        expected = max(expected, end + 1)
    if expected - 1 != issued:
        problems.append(f"blocks reach serial {expected - 1} but {issued} were issued")
    return problems
