"""The ``net.block_width_factors`` width schedule."""
from __future__ import annotations

from collections.abc import Sequence


def block_factors(factors: Sequence[float], no_blocks: int) -> list[float]:
    """Expand the flat (factor, count) pair list into one factor per block.

    ``[1.0, 2, 1.5, 3, 2.0, 2]`` with ``no_blocks=7`` -> ``[1, 1, 1.5, 1.5, 1.5, 2, 2]``.
    A first element of 0 (the default ``[0.0]``) disables the schedule: every factor is 1.
    Raises ``ValueError`` if the list is malformed or the counts do not sum to ``no_blocks``.
    """
    factors = list(factors)
    if no_blocks < 1:
        raise ValueError(f"net.no_blocks must be >= 1, got {no_blocks}")
    if not factors:
        raise ValueError("net.block_width_factors is empty; use [0.0] for equal widths")
    if float(factors[0]) == 0.0:
        return [1.0] * no_blocks
    if len(factors) % 2:
        raise ValueError(f"net.block_width_factors must be (factor, count) pairs, got an odd-length "
                         f"list {factors}")
    expanded: list[float] = []
    for factor, count in zip(factors[0::2], factors[1::2]):
        if float(count) != int(count) or int(count) < 1:
            raise ValueError(f"net.block_width_factors: count {count!r} (for factor {factor}) must be "
                             f"a positive integer in {factors}")
        if float(factor) <= 0:
            raise ValueError(f"net.block_width_factors: factor {factor!r} must be > 0 in {factors}")
        expanded += [float(factor)] * int(count)
    if len(expanded) != no_blocks:
        raise ValueError(f"net.block_width_factors {factors} describe {len(expanded)} blocks but "
                         f"net.no_blocks={no_blocks}")
    return expanded


def block_widths(no_hidden: int, factors: Sequence[float], no_blocks: int) -> list[int]:
    """Output width ``int(C * f_i)`` of every block (the original truncates, it does not round)."""
    if no_hidden < 1:
        raise ValueError(f"net.no_hidden must be >= 1, got {no_hidden}")
    widths = [int(no_hidden * f) for f in block_factors(factors, no_blocks)]
    if min(widths) < 1:
        raise ValueError(f"net.block_width_factors {list(factors)} give a block of width 0 "
                         f"for net.no_hidden={no_hidden}")
    return widths
