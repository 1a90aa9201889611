"""Collective algorithms written as rounds of point-to-point transfers.

A schedule is a list of *rounds*; a round is a list of ``(src, dst, size_bytes)``
transfers between *positions* ``0 .. n-1`` in the collective's group (the group
tuple gives the ring order; position ``p`` is rank ``group[p]``). In each round a
member sends and receives what the round lists for it and cannot start the next
round before its own part of this one is done (data dependency: in a ring the chunk
forwarded at step s+1 is the one received at step s). ``expand`` turns rounds into
per-rank steps.

Size conventions follow nccl-tests (``size_bytes`` is the "size" column there):

- ``all_reduce``: the buffer, S bytes on every rank.
- ``all_gather``: the *output* buffer; each rank contributes S/n.
- ``reduce_scatter``: the *input* buffer; each rank ends with S/n.
- ``all_to_all``: each rank's send buffer; S/n goes to each rank (itself included).
- ``broadcast``: the buffer sent from the root.

Bytes each rank sends (S divisible by n): ring all-reduce ``2(n-1)/n*S``,
all-gather and reduce-scatter ``(n-1)/n*S``, all-to-all ``(n-1)/n*S``; tree
all-reduce sends S per tree edge and direction.
"""

from __future__ import annotations

from typing import Callable

Round = list[tuple[int, int, int]]
ScheduleFn = Callable[[int, int, int], list[Round]]

COLLECTIVE_KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast")

DEFAULT_ALGORITHM = {
    "all_reduce": "ring",
    "all_gather": "ring",
    "reduce_scatter": "ring",
    "all_to_all": "direct",
    "broadcast": "tree",
}

# nccl-tests bus-bandwidth factors (doc/PERFORMANCE.md of NVIDIA/nccl-tests):
# busbw = algbw * factor(n).
_BUSBW_FACTOR = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
}


def busbw_factor(kind: str, n: int) -> float:
    """nccl-tests factor from algorithm bandwidth to bus bandwidth for ``n`` ranks."""
    return _BUSBW_FACTOR[kind](n)


def chunk_sizes(size_bytes: int, n: int) -> list[int]:
    """Split ``size_bytes`` into ``n`` chunks as evenly as possible (each >= 1 byte)."""
    base, extra = divmod(size_bytes, n)
    return [max(1, base + (1 if i < extra else 0)) for i in range(n)]


def _ring_reduce_scatter(n: int, chunks: list[int]) -> list[Round]:
    # Step s: position i sends chunk (i - s) to i+1; after n-1 steps position i
    # holds the fully reduced chunk (i + 1) mod n.
    return [[(i, (i + 1) % n, chunks[(i - s) % n]) for i in range(n)] for s in range(n - 1)]


def _ring_all_gather(n: int, chunks: list[int], owned_offset: int) -> list[Round]:
    # Position i starts owning chunk (i + owned_offset) and forwards what it got.
    return [
        [(i, (i + 1) % n, chunks[(i + owned_offset - s) % n]) for i in range(n)]
        for s in range(n - 1)
    ]


def _direct_reduce_scatter(n: int, chunks: list[int]) -> list[Round]:
    return [[(i, j, chunks[j]) for i in range(n) for j in range(n) if i != j]]


def _direct_all_gather(n: int, chunks: list[int]) -> list[Round]:
    return [[(i, j, chunks[i]) for i in range(n) for j in range(n) if i != j]]


def _binomial_reduce(n: int, size_bytes: int) -> list[Round]:
    rounds = []
    for k in range((n - 1).bit_length()):
        mask = 1 << k
        rounds.append([(p, p - mask, size_bytes) for p in range(mask, n, 2 * mask)])
    return rounds


def _binomial_broadcast(n: int, size_bytes: int) -> list[Round]:
    rounds = []
    for k in reversed(range((n - 1).bit_length())):
        mask = 1 << k
        rounds.append([(p, p + mask, size_bytes) for p in range(0, n, 2 * mask) if p + mask < n])
    return rounds


def _rooted(rounds: list[Round], n: int, root: int) -> list[Round]:
    """Rotate relative positions (root = 0) to absolute positions."""
    return [[((s + root) % n, (d + root) % n, b) for s, d, b in rnd] for rnd in rounds]


def ring_all_reduce(n: int, size_bytes: int, root: int) -> list[Round]:
    chunks = chunk_sizes(size_bytes, n)
    return _ring_reduce_scatter(n, chunks) + _ring_all_gather(n, chunks, owned_offset=1)


def ring_all_gather(n: int, size_bytes: int, root: int) -> list[Round]:
    return _ring_all_gather(n, chunk_sizes(size_bytes, n), owned_offset=0)


def ring_reduce_scatter(n: int, size_bytes: int, root: int) -> list[Round]:
    return _ring_reduce_scatter(n, chunk_sizes(size_bytes, n))


def direct_all_reduce(n: int, size_bytes: int, root: int) -> list[Round]:
    chunks = chunk_sizes(size_bytes, n)
    return _direct_reduce_scatter(n, chunks) + _direct_all_gather(n, chunks)


def direct_all_gather(n: int, size_bytes: int, root: int) -> list[Round]:
    return _direct_all_gather(n, chunk_sizes(size_bytes, n))


def direct_reduce_scatter(n: int, size_bytes: int, root: int) -> list[Round]:
    return _direct_reduce_scatter(n, chunk_sizes(size_bytes, n))


def direct_all_to_all(n: int, size_bytes: int, root: int) -> list[Round]:
    # Same transfers as a direct reduce-scatter: chunk j of every rank goes to j.
    return _direct_reduce_scatter(n, chunk_sizes(size_bytes, n))


def tree_all_reduce(n: int, size_bytes: int, root: int) -> list[Round]:
    """Binomial-tree reduce to the root, then binomial-tree broadcast (whole buffer)."""
    return _rooted(_binomial_reduce(n, size_bytes) + _binomial_broadcast(n, size_bytes), n, root)


def tree_broadcast(n: int, size_bytes: int, root: int) -> list[Round]:
    return _rooted(_binomial_broadcast(n, size_bytes), n, root)


def direct_broadcast(n: int, size_bytes: int, root: int) -> list[Round]:
    return [[(root, j, size_bytes) for j in range(n) if j != root]]


SCHEDULES: dict[tuple[str, str], ScheduleFn] = {
    ("all_reduce", "ring"): ring_all_reduce,
    ("all_reduce", "tree"): tree_all_reduce,
    ("all_reduce", "direct"): direct_all_reduce,
    ("all_gather", "ring"): ring_all_gather,
    ("all_gather", "direct"): direct_all_gather,
    ("reduce_scatter", "ring"): ring_reduce_scatter,
    ("reduce_scatter", "direct"): direct_reduce_scatter,
    ("all_to_all", "direct"): direct_all_to_all,
    ("broadcast", "tree"): tree_broadcast,
    ("broadcast", "direct"): direct_broadcast,
}


def algorithms_for(kind: str) -> tuple[str, ...]:
    """Algorithms this package can expand for a collective kind."""
    return tuple(sorted(alg for k, alg in SCHEDULES if k == kind))
