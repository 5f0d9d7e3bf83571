"""Progress reporting for long steps: a rich progress bar on a terminal, silence elsewhere."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    def task(self, description: str, total: int | None = None) -> AbstractContextManager[Task]: ...


class _NullTask:
    def advance(self, n: int = 1) -> None:
        return None

    def __enter__(self) -> _NullTask:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class NullReporter:
    def task(self, description: str, total: int | None = None) -> _NullTask:
        return _NullTask()


class _RichTask:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._id, n)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(self, *exc: object) -> None:
        task = self._progress.tasks[self._id]
        if task.total is None:
            self._progress.update(self._id, total=task.completed)
        self._progress.stop_task(self._id)


class RichReporter:
    """One rich Progress display; each step adds a bar (or a counter when size is unknown)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def task(self, description: str, total: int | None = None) -> _RichTask:
        return _RichTask(self.progress, self.progress.add_task(description, total=total))
