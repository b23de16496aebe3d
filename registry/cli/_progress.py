"""Progress bars on a terminal: bytes and bytes/s of every upload and download, items of a
computation, a spinner while the server works.

Shown only when both stdout and stderr are terminals and the output is not ``--output json``:
a pipe, a file or a JSON reader gets exactly what it got before, and nothing is drawn on
stdout (the bars go to stderr). ``rich`` (a dependency of typer) is imported only when a bar is
actually drawn, so the CLI's start-up never pays for it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from registry.cli._output import State

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from registry.client import RegistryClient


def on_terminal(state: State) -> bool:
    """Whether progress may be drawn: a human at a terminal (both streams), not JSON."""
    if state.json:
        return False
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


class Bars:
    """The live display of one command: one line per transfer or computation."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def _start(self, label: str, total: float | None, unit: str) -> TaskID:
        task = self._tasks.get(label)
        if task is None:
            task = self._progress.add_task(label, total=total, unit=unit)
            self._tasks[label] = task
        else:  # a retry: the same transfer again, from zero
            self._progress.reset(task, total=total)
        return task

    def task(self, label: str, total: int | None) -> Callable[[int], None]:
        """:class:`registry.client._progress.TransferProgress`: a transfer of ``total`` bytes."""
        task = self._start(label, total, "bytes")
        return lambda nbytes: self._progress.advance(task, nbytes)

    def counter(self, label: str, unit: str) -> Callable[[int, int], None]:
        """A ``progress(done, total)`` callback (adapter maths) drawn as ``done/total unit``;
        its line appears with the first call (after the downloads that precede the work)."""
        tasks: list[TaskID] = []

        def update(done: int, total: int) -> None:
            if not tasks:
                tasks.append(self._start(label, total, unit))
            self._progress.update(tasks[0], completed=done, total=total)

        return update

    def spinner(self, label: str) -> None:
        """Work whose size is unknown here (the server is doing it): a pulsing bar and time."""
        self._start(label, None, "")


def _columns() -> tuple[Any, ...]:
    from rich import filesize
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Amount(ProgressColumn):
        """``3.1/10.5 MB`` for bytes, ``12/48 tensors`` for counted items."""

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "")
            if not unit:
                return Text("")
            total = "?" if task.total is None else int(task.total)
            if unit != "bytes":
                return Text(f"{int(task.completed)}/{total} {unit}")
            done = filesize.decimal(int(task.completed))
            size = "?" if task.total is None else filesize.decimal(int(task.total))
            return Text(f"{done}/{size}")

    class Rate(ProgressColumn):
        """Bytes (or items) per second: the recent rate, or the average once finished (also
        for a transfer too short for rich's own estimate)."""

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "")
            if not unit:
                return Text("")
            speed = task.finished_speed or task.speed
            if speed is None and task.elapsed:
                speed = task.completed / task.elapsed
            if speed is None:
                return Text("?/s")
            if unit == "bytes":
                return Text(f"{filesize.decimal(int(speed))}/s")
            return Text(f"{speed:.1f} {unit}/s" if speed < 100 else f"{speed:,.0f} {unit}/s")

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        Amount(),
        Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextlib.contextmanager
def progress_bars(state: State, api: RegistryClient | None = None) -> Iterator[Bars | None]:
    """Bars on stderr for the duration of a command (None when not on a terminal); with
    ``api``, every upload and download the client makes meanwhile draws its own bar."""
    if not on_terminal(state):
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(file=sys.stderr)
    with Progress(*_columns(), console=console, transient=False) as progress:
        bars = Bars(progress)
        if api is not None:
            api.progress = bars
        try:
            yield bars
        finally:
            if api is not None:
                api.progress = None
