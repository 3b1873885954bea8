"""Structure detection before any symbolic work: independent blocks and quadratic families.

*Blocks* are the connected components of the graph "G_i and G_j share a variable" (MATH.md §6):
every later stage factorises over them, Q = Σ_b Q_b and R = Σ_b R_b.

A block is a *quadratic family* when every G_i is a homogeneous quadratic form ½ xᵀA_i x in the
block's variables with constant symmetric A_i; its flows are linear, φ^t_i = exp(t A_i).

>>> import sympy as sp
>>> u, v, a = sp.symbols("u v a", real=True)
>>> [b.g_indices for b in blocks((u**2, v**3, a), (u, v, a))]
[(0,), (1,), (2,)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sympy as sp

__all__ = ["Block", "blocks", "quadratic_matrices"]


@dataclasses.dataclass(frozen=True)
class Block:
    """Indices of the components G_i (equivalently of w_i and µ_i) and of the variables x_k of a block."""

    g_indices: tuple[int, ...]
    x_indices: tuple[int, ...]


def blocks(G: Sequence[sp.Expr], variables: Sequence[sp.Symbol]) -> tuple[Block, ...]:
    """Connected components of the "shares a variable" graph, ordered by their first component."""
    uses = [{k for k, x in enumerate(variables) if g.has(x)} for g in G]
    parent = list(range(len(G)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(G)):
        for j in range(i + 1, len(G)):
            if uses[i] & uses[j]:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(G)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        xs = sorted(set().union(*(uses[i] for i in members)))
        out.append(Block(tuple(members), tuple(xs)))
    return tuple(sorted(out, key=lambda b: b.g_indices[0]))


def quadratic_matrices(G: Sequence[sp.Expr], variables: Sequence[sp.Symbol]) -> list[sp.Matrix] | None:
    """The symmetric A_i with G_i = ½ xᵀA_i x, or None unless every G_i is such a form with constant A_i."""
    mats = []
    for g in G:
        try:
            poly = sp.Poly(g, *variables)
        except sp.PolynomialError:
            return None
        if not poly.is_homogeneous or poly.total_degree() != 2:
            return None
        A = sp.hessian(g, variables)
        if A.free_symbols:
            return None  # symbolic spectra: the joint eigenbasis would need case analysis
        mats.append(A)
    return mats
