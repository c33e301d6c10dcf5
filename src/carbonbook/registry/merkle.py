"""Merkle trees as RFC 6962 (Certificate Transparency) defines them, so that anyone can check
a proof with a few lines of code in any language. Pure.

Leaf hash = SHA-256(0x00 || leaf bytes); node hash = SHA-256(0x01 || left || right); a tree of
n leaves splits at the largest power of two below n. The 0x00/0x01 prefixes keep a leaf from
passing for a node (second-preimage attacks).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of already-hashed leaves (RFC 6962 §2.1); of none, SHA-256('')."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    return _root(level, 0, len(level))


def _root(leaves: list[bytes], lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_root(leaves, lo, lo + k), _root(leaves, lo + k, hi))


def proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index` (RFC 6962 §2.1.1), nearest sibling first."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} of {len(leaves)}")
    path: list[bytes] = []
    _path(list(leaves), index, 0, len(leaves), path)
    return path


def _path(leaves: list[bytes], m: int, lo: int, hi: int, out: list[bytes]) -> None:
    n = hi - lo
    if n == 1:
        return
    k = _split(n)
    if m < k:
        _path(leaves, m, lo, lo + k, out)
        out.append(_root(leaves, lo + k, hi))
    else:
        _path(leaves, m - k, lo + k, hi, out)
        out.append(_root(leaves, lo, lo + k))


def verify(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected: bytes) -> bool:
    """Whether `leaf` (hashed) is leaf `index` of a tree of `size` leaves with root `expected`
    (RFC 9162 §2.1.3.2, the inclusion-proof check)."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected
