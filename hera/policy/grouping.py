"""Grouping models into nodes of one or two tenants (networkx is not available; these are small and exact).

- :func:`max_weight_matching`: maximum-weight (not necessarily perfect) matching on a complete graph given as
  a symmetric matrix (NaN = pair not allowed). Exact dynamic programme over subsets for n ≤ ``exact_limit``
  (O(2^n · n)); beyond that a greedy matching (heaviest edge first) improved by 2-swaps, whose weight is
  certified against :func:`matching_upper_bound`.
- :func:`matching_upper_bound`: max-weight cycle cover (``scipy.optimize.linear_sum_assignment`` on the
  symmetric matrix with zero diagonal) / 2 ≥ best matching (a matching {i,j} is the cover i→j→i, counted
  twice).
- :func:`best_mean_grouping`: the grouping (pairs + singles) maximising the *mean EMU per node*
  ``(Σ_pairs EMU_p + #singles) / #nodes`` by Dinkelbach's method: for λ, maximise
  ``Σ_nodes (EMU − λ) = n(1 − λ) + Σ_pairs (EMU_p − 2 + λ)`` — a matching with weights ``EMU_p − 2 + λ`` —
  then set λ to the ratio reached; stops when λ no longer grows (finite, exact when the matching is exact).
  For a fixed number of nodes this is the same as maximising total EMU.
- :func:`all_groupings`: every partition into groups of size ≤ 2 (for the exhaustive oracle).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

EXACT_LIMIT = 16


def _weight(w: np.ndarray, i: int, j: int) -> float:
    x = w[i, j]
    return float(x) if np.isfinite(x) else -np.inf


def max_weight_matching(w: np.ndarray, exact_limit: int = EXACT_LIMIT) -> list[tuple[int, int]]:
    """Pairs (i < j) of a maximum-weight matching using only edges of positive weight."""
    w = np.asarray(w, float)
    n = len(w)
    if n <= exact_limit:
        return _exact_matching(w)
    return _greedy_matching(w)


def _exact_matching(w: np.ndarray) -> list[tuple[int, int]]:
    n = len(w)
    full = (1 << n) - 1
    best: dict[int, tuple[float, tuple]] = {full: (0.0, ())}

    def solve(mask: int) -> tuple[float, tuple]:
        if mask in best:
            return best[mask]
        i = (~mask & full).bit_length() - 1  # highest free vertex
        value, pairs = solve(mask | (1 << i))  # i stays single
        for j in range(n):
            if j != i and not mask >> j & 1:
                wij = _weight(w, i, j)
                if wij > 0:
                    v, p = solve(mask | (1 << i) | (1 << j))
                    if v + wij > value + 1e-12:
                        value, pairs = v + wij, p + ((min(i, j), max(i, j)),)
        best[mask] = (value, pairs)
        return best[mask]

    return sorted(solve(0)[1])


def _greedy_matching(w: np.ndarray) -> list[tuple[int, int]]:
    n = len(w)
    edges = sorted(((_weight(w, i, j), i, j) for i in range(n) for j in range(i + 1, n)), reverse=True)
    mate: dict[int, int] = {}
    for wij, i, j in edges:
        if wij > 0 and i not in mate and j not in mate:
            mate[i], mate[j] = j, i
    improved = True
    while improved:  # 2-swap: {a,b},{c,d} → {a,c},{b,d} or {a,d},{b,c}
        improved = False
        pairs = sorted({(min(a, b), max(a, b)) for a, b in mate.items()})
        for x in range(len(pairs)):
            for y in range(x + 1, len(pairs)):
                (a, b), (c, d) = pairs[x], pairs[y]
                old = _weight(w, a, b) + _weight(w, c, d)
                for (p, q), (r, s) in (((a, c), (b, d)), ((a, d), (b, c))):
                    if (
                        _weight(w, p, q) + _weight(w, r, s) > old + 1e-12
                        and min(_weight(w, p, q), _weight(w, r, s)) > 0
                    ):
                        mate.update({p: q, q: p, r: s, s: r})
                        improved = True
                        break
                if improved:
                    break
            if improved:
                break
    return sorted({(min(a, b), max(a, b)) for a, b in mate.items()})


def matching_weight(w: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    return float(sum(_weight(np.asarray(w, float), i, j) for i, j in pairs))


def matching_upper_bound(w: np.ndarray) -> float:
    """Upper bound on any matching's weight: half the max-weight cycle cover (self loops weigh 0)."""
    m = np.nan_to_num(np.maximum(np.asarray(w, float), 0.0), nan=0.0)
    np.fill_diagonal(m, 0.0)
    r, c = linear_sum_assignment(m, maximize=True)
    return float(m[r, c].sum()) / 2.0


def best_mean_grouping(
    pair_emu: np.ndarray, exact_limit: int = EXACT_LIMIT, tie_break: np.ndarray | None = None
) -> list[tuple[int, ...]]:
    """Groups (pairs and singletons, indices) maximising mean EMU per node; a singleton has EMU 1.
    ``tie_break``: small symmetric weights added to the matching's edge weights (not to the EMU objective),
    to choose among groupings of equal EMU."""
    e = np.asarray(pair_emu, float)
    n = len(e)
    extra = np.zeros_like(e) if tie_break is None else np.nan_to_num(np.asarray(tie_break, float))
    lam, pairs = 1.0, []
    for _ in range(4 * n + 4):
        cand = max_weight_matching(e - 2.0 + lam + extra, exact_limit)
        ratio = (matching_weight(e, cand) + n - 2 * len(cand)) / (n - len(cand))
        if ratio <= lam + 1e-12:
            if tie_break is not None and ratio >= lam - 1e-12:
                pairs = cand  # the same mean EMU, chosen with the tie-break at the optimal λ
            break
        lam, pairs = ratio, cand
    used = {i for p in pairs for i in p}
    return sorted([tuple(p) for p in pairs] + [(i,) for i in range(n) if i not in used])


def all_groupings(items: Sequence) -> Iterator[list[tuple]]:
    """Every partition of ``items`` into groups of one or two (n=8: 764, n=10: 9496, n=12: 140152)."""
    items = list(items)
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for g in all_groupings(rest):
        yield [(first,)] + g
    for k, other in enumerate(rest):
        for g in all_groupings(rest[:k] + rest[k + 1 :]):
            yield [(first, other)] + g
