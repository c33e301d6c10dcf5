"""RFC 6962 Merkle trees: every leaf of every tree size proves its inclusion, and nothing else
does (another leaf, another index, another root, a tampered path)."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from carbonbook.registry.merkle import leaf_hash, node_hash, proof, root, verify


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"event-{i}".encode()) for i in range(n)]


def test_small_trees_have_the_rfc_shape():
    a, b, c = leaves(3)
    assert root([]) == hashlib.sha256(b"").digest()
    assert root([a]) == a
    assert root([a, b]) == node_hash(a, b)
    assert root([a, b, c]) == node_hash(node_hash(a, b), c)  # split at 2, the last promoted
    assert proof([a, b, c], 2) == [node_hash(a, b)]


@given(st.integers(1, 70), st.data())
def test_every_leaf_proves_its_inclusion_and_nothing_else_does(n, data):
    tree = leaves(n)
    top = root(tree)
    i = data.draw(st.integers(0, n - 1))
    path = proof(tree, i)
    assert verify(tree[i], i, n, path, top)
    assert not verify(leaf_hash(b"forged"), i, n, path, top)
    assert not verify(tree[i], i, n, path, leaf_hash(b"other root"))
    if n > 1:
        j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
        assert not verify(tree[i], j, n, path, top)
        assert not verify(tree[i], i, n, [*path[:-1], leaf_hash(b"x")], top)
