"""The CLI's progress bars: done/total, failed episodes and elapsed time; no time-remaining
estimate (episode durations vary too much for one to mean anything)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.progress import TimeElapsedColumn, TimeRemainingColumn

from langgraph_hera.cli import _common
from langgraph_hera.cli._common import _episode_callback, _progress, _with_point_progress


def _render(progress: Any) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(progress.make_tasks_table(progress.tasks))
    return console.file.getvalue()


def test_progress_counts_done_and_failed_and_shows_elapsed_not_remaining() -> None:
    progress = _progress()
    assert not any(isinstance(c, TimeRemainingColumn) for c in progress.columns)
    assert any(isinstance(c, TimeElapsedColumn) for c in progress.columns)
    task = progress.add_task("twc / hera", total=5)
    on_episode = _episode_callback(progress, task)
    for error in (None, "edge server died", None):
        on_episode(SimpleNamespace(error=error))
    line = _render(progress)
    assert "3/5 episodes" in line
    assert "1 failed" in line
    assert re.search(r"\b0:00:\d\d\b", line)  # elapsed
    assert "-:--:--" not in line  # the remaining-time column's placeholder


def test_a_task_without_failure_counts_shows_none() -> None:
    progress = _progress("tasks")
    task = progress.add_task("profile twc", total=2)
    progress.advance(task)
    line = _render(progress)
    assert "1/2 tasks" in line
    assert "failed" not in line


def test_each_point_clock_starts_when_the_point_before_it_is_done(monkeypatch) -> None:
    shown: list[Any] = []

    def capture(unit: str = "episodes") -> Any:
        shown.append(_progress(unit))
        shown[-1].disable = True  # no live display in the test's output
        return shown[-1]

    monkeypatch.setattr(_common, "_progress", capture)
    points = [SimpleNamespace(label="always-edge"), SimpleNamespace(label="always-cloud")]
    seen: list[tuple[bool, bool]] = []

    def run(on_episode: Any) -> None:
        (progress,) = shown
        first, second = progress.tasks
        seen.append((first.started, second.started))
        on_episode(points[0], SimpleNamespace(error=None))
        seen.append((first.started, second.started))
        on_episode(points[0], SimpleNamespace(error="boom"))
        seen.append((first.started, second.started))
        on_episode(points[1], SimpleNamespace(error=None))

    _with_point_progress(points, 2, run)
    # The first point's clock runs from the start, the second's from the first's last episode.
    assert seen == [(True, False), (True, False), (True, True)]
    first, second = shown[0].tasks
    assert (first.completed, first.fields["failed"]) == (2, 1)
    assert (second.completed, second.fields["failed"]) == (1, 0)
