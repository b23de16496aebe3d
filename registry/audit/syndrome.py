"""Naming the edited event when a re-chained history contradicts a checkpoint.

Someone who can write the database can edit an event and recompute every later hash and the
head: the chain is consistent again and only a checkpoint's recorded head hash shows that
history changed. The head alone cannot say *which* event changed (every later hash changed
with it), and recording every event's hash in checkpoints costs as much as the log itself.

So each checkpoint records a *syndrome* of its segment, the events ``after < seq <= seq of the
checkpoint`` (``after`` = the previous checkpoint's seq, 0 for the first): with ``d(e)`` the
sha256 of event ``e``'s canonical document (its content, not its chained hash, so re-chaining
leaves the other events' ``d`` unchanged) and ``i(e) = seq - after - 1`` its index in the
segment,

    S[0]   = XOR of d(e) over the segment
    S[1+j] = XOR of d(e) over the events whose index has bit j set   (j < bit_length(n - 1))

``1 + ceil(log2 n)`` values of 32 bytes: about 1 KiB for a segment of a million events. If one
event of the segment was edited, XOR-ing the recorded syndrome with the one recomputed from the
database gives ``D[0] = d ^ d'`` and ``D[1+j] = D[0]`` exactly for the bits j set in its index,
``0`` for the others: the index, hence the seq. Two or more edited events leave some ``D[1+j]``
equal to neither, and the verifier reports the segment as the range that holds the first edit
(the previous checkpoint vouches for everything before it). Detection never depends on this:
the head hash already failed; the syndrome only names the event. A deliberate rewrite of many
events could craft a misleading location, never a passing verification.
"""

from __future__ import annotations

import re

_HEX64 = re.compile(r"[0-9a-f]{64}")


def width(count: int) -> int:
    """Number of syndrome values for a segment of ``count`` (>= 1) events."""
    return 1 + (count - 1).bit_length()


class Syndrome:
    """Accumulates the syndrome of the events after ``after``, added in seq order."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.count = 0
        self._acc: list[int] = [0]

    def add(self, seq: int, digest: bytes) -> None:
        """Add the event at ``seq`` (the next one) with content digest ``digest``."""
        index = seq - self.after - 1
        if index != self.count:
            raise ValueError(
                f"events must be added in seq order (expected {self.after + 1 + self.count})"
            )
        value = int.from_bytes(digest, "big")
        self._acc[0] ^= value
        bit = 0
        while index:
            if index & 1:
                while len(self._acc) <= bit + 1:
                    self._acc.append(0)
                self._acc[bit + 1] ^= value
            index >>= 1
            bit += 1
        self.count += 1

    def values(self) -> list[str]:
        """The syndrome as ``width(count)`` lowercase hex strings."""
        acc = self._acc + [0] * (width(max(self.count, 1)) - len(self._acc))
        return [f"{v:064x}" for v in acc]


def check_values(values: object, count: int) -> list[str]:
    """Validate a stored syndrome for a segment of ``count`` events (ValueError if malformed)."""
    if (
        not isinstance(values, list)
        or len(values) != width(count)
        or not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in values)
    ):
        raise ValueError(f"a syndrome of {count} events is {width(count)} 64-hex strings")
    return list(values)


def locate(recorded: list[str], computed: list[str], *, after: int, count: int) -> int | None:
    """The seq of the one event whose content differs between the two syndromes of the segment
    ``after < seq <= after + count``; None when that is not a single event (or none)."""
    if len(recorded) != len(computed):
        return None
    diff = [int(a, 16) ^ int(b, 16) for a, b in zip(recorded, computed, strict=True)]
    if diff[0] == 0:
        return None
    index = 0
    for bit, value in enumerate(diff[1:]):
        if value == diff[0]:
            index |= 1 << bit
        elif value != 0:
            return None
    return after + 1 + index if index < count else None
