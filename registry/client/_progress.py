"""Transfer progress: what the client reports while bytes move, for a caller to display.

The client never draws anything itself: a caller (the CLI on a terminal) sets
``RegistryClient.progress`` to an object with a :meth:`TransferProgress.task` method, and every
streamed upload or download then reports its bytes through it. ``None`` (the default) reports
nothing and costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol


class TransferProgress(Protocol):
    def task(self, label: str, total: int | None) -> Callable[[int], None]:
        """A transfer of ``total`` bytes (None: unknown) starts, or starts again after a retry
        (same ``label``: count from zero again); the answer is called with each chunk's size."""
        ...


def counted(
    chunks: Iterable[bytes], progress: TransferProgress | None, label: str, total: int | None
) -> Iterator[bytes]:
    """``chunks`` passed through, each one's size reported to ``progress`` once it is taken."""
    if progress is None:
        yield from chunks
        return
    advance = progress.task(label, total)
    for chunk in chunks:
        yield chunk
        advance(len(chunk))
