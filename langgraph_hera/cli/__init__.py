"""The ``hera`` command: thin adapters over the library, one module per group of sub-commands.

``episodes``: ``hera serve`` (edge server), ``hera run`` (routed episodes), ``hera record``
(trajectories for training routers), ``hera bench`` (policies compared); ``supervise``:
``hera supervise``; ``train``: ``hera profile``, ``hera adapt``, ``hera train``; ``calibrate``:
``hera calibrate`` (closed loop; offline with ``--traces`` in ``traces``); ``parser``: the
argument parser; ``_common``: what they share."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from langgraph_hera.cli._common import STAND_IN
from langgraph_hera.cli._common import _checkpoint_target as _checkpoint_target
from langgraph_hera.cli._common import _Models as _Models
from langgraph_hera.cli.parser import build_parser

__all__ = ["STAND_IN", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hera`` command; returns the exit status (2 for a bad argument)."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def _terminate(signum: int, _: Any) -> None:
        # SIGTERM unwinds like Ctrl-C: `finally` blocks stop the edge server we started
        # (atexit alone does not run on SIGTERM, which orphaned the vLLM process).
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args) or 0)
