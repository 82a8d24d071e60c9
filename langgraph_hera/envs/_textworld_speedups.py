"""Speedups of TextWorld's PDDL backend for the ALFWorld suite (`set_textworld_speedups`), the
entity-name wrapper, and the process-wide lock every call into TextWorld's PDDL backend holds
(`_textworld_guard`, which also puts back the ``sys.argv`` Fast Downward overwrites)."""

from __future__ import annotations

import copy
import functools
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: The originals replaced by `set_textworld_speedups`: (owner, attribute, original).
_PATCHED: list[tuple[Any, str, Any]] = []

#: Actions that never change what the planner cares about (the expert's plan stays valid).
_NOOP_PREFIXES = ("look", "inventory", "examine", "help")

#: Held by every call into TextWorld's PDDL backend and Fast Downward (`_textworld_guard`).
#: Neither is thread-safe: the grammar and PDDL parsers are module-level TatSu parsers whose
#: rule and state stacks two threads corrupt (``IndexError: pop from empty list``), and
#: ``fast_downward.pddl2sas`` sets the translator's module-global ``options`` per call
#: (``optimize=True`` for the replanning task, ``False`` for the other), so one thread's
#: translation reads the other's options (``KeyError`` in ``build_sas_operator``) or comes out
#: silently wrong; it also swaps ``sys.argv`` and ``sys.stdout``. The episode runner plays
#: ``concurrency`` environments in worker threads, so without the lock ~5% of episodes failed.
_TEXTWORLD_LOCK = threading.RLock()


def set_textworld_speedups(enabled: bool) -> None:
    """Install (or remove) speedups of TextWorld's PDDL backend (process-wide, idempotent).

    - memoises the grammar-string and query parses of ``textworld.envs.pddl.textgen`` (handing
      out deep copies of the cached parse trees);
    - makes the context copies of the text generator shallow (only a context's dictionaries are
      ever mutated, never the entities in them);
    - memoises Fast Downward's PDDL-to-SAS translation of the last few games (TextWorld
      translates every game twice per ``load`` and twice again per ``reset``).

    The generated text, admissible commands and plans are unchanged.
    """
    with _TEXTWORLD_LOCK:
        _set_speedups(enabled)


def _set_speedups(enabled: bool) -> None:
    if not enabled:
        while _PATCHED:
            owner, name, original = _PATCHED.pop()
            setattr(owner, name, original)
        return
    if _PATCHED:
        return
    import fast_downward
    from textworld.envs.pddl import textgen
    from textworld.logic import Rule

    parse = textgen._parse_and_convert
    query = Rule.parse_conjunctive_query.__func__  # type: ignore[attr-defined]
    translate = fast_downward.pddl2sas
    parsed: dict[tuple[str, str], Any] = {}
    queries: dict[str, Any] = {}

    def parse_and_convert(text: str, rule_name: str = "symbols", **kwargs: Any) -> Any:
        key = (text, rule_name)
        if key not in parsed:
            parsed[key] = parse(text, rule_name=rule_name, **kwargs)
        return copy.deepcopy(parsed[key])

    def parse_conjunctive_query(cls: type, expr: str) -> Any:
        if expr not in queries:
            queries[expr] = query(cls, expr)
        return queries[expr]

    def copy_context(context: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "state": context["state"],
            "facts": context["facts"],
            "variables": dict(context["variables"]),
            "mapping": dict(context["mapping"]),
            "entity_infos": context["entity_infos"],
        }

    def symbol_copy(self: Any, context: Mapping[str, Any]) -> Any:
        own, self.context = self.context, {}
        try:
            new = copy.deepcopy(self)
        finally:
            self.context = own
        new.context = copy_context(context)
        return new

    @functools.lru_cache(maxsize=8)
    def pddl2sas(domain: str, problem: str, verbose: bool = False, optimize: bool = False) -> Any:
        with _keep_argv():
            return translate(domain, problem, verbose=verbose, optimize=optimize)

    for owner, name, new in (
        (textgen, "_parse_and_convert", parse_and_convert),
        (textgen, "copy_context", copy_context),
        (textgen.Symbol, "copy", symbol_copy),
        (Rule, "parse_conjunctive_query", classmethod(parse_conjunctive_query)),
        (fast_downward, "pddl2sas", pddl2sas),
    ):
        _PATCHED.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, new)


@functools.lru_cache(maxsize=1)
def _demangler() -> type:
    """A TextWorld wrapper naming entities like ALFWorld (``apple_bar_2`` -> ``apple 2``)."""
    import textworld

    class AlfredNames(textworld.core.Wrapper):  # type: ignore[misc, name-defined]
        def load(self, *args: Any, **kwargs: Any) -> None:
            super().load(*args, **kwargs)
            for info in self._entity_infos.values():
                if "_bar_" in info.id:
                    kind, n = info.id.rsplit("_bar_", 1)
                    info.name = f"{kind} {n}"

    return AlfredNames


@contextmanager
def _textworld_guard() -> Iterator[None]:
    """Hold `_TEXTWORLD_LOCK` (re-entrant) and put ``sys.argv`` back afterwards."""
    with _TEXTWORLD_LOCK, _keep_argv():
        yield


@contextmanager
def _keep_argv() -> Iterator[None]:
    """Fast Downward's translator overwrites ``sys.argv``; put it back."""
    argv = list(sys.argv)
    try:
        yield
    finally:
        sys.argv = argv
