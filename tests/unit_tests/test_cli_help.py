"""`hera <command> --help`: every option's default appears once, and only when it says something."""

from __future__ import annotations

import argparse
import re

import pytest

from langgraph_hera.cli.parser import build_parser

_DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"hera": parser, **sub.choices}


def _entries(help_text: str) -> dict[str, str]:
    """The help's option entries (header and wrapped help joined on one line), by header."""
    body = help_text.split("\n\n", 1)[1]  # past the usage block
    entries = {}
    for chunk in re.split(r"\n(?=  \S)", body):
        if chunk.startswith("  "):
            line = " ".join(chunk.split())
            entries[line.split("  ")[0] if "  " in line else line] = line
    return entries


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_shows_each_default_once_and_only_when_informative(command: str) -> None:
    text = _commands()[command].format_help()
    flat = " ".join(text.split())
    for noise in ("(default: None)", "(default: [])", "(default: )", "(default: False)"):
        assert noise not in flat, f"hera {command} --help shows {noise}"
    for entry in _entries(text).values():
        assert len(_DEFAULT.findall(entry)) <= 1, f"hera {command}: two defaults in {entry!r}"


def test_help_shows_the_defaults_worth_knowing() -> None:
    entries = " | ".join(_entries(_commands()["run"].format_help()).values())
    # An option without a help text still shows its default ...
    assert "--suite SUITE (default: twc)" in entries
    assert "--max-steps MAX_STEPS (default: 30)" in entries
    # ... one whose help states it shows it once, in the help's own words ...
    assert "--model MODEL edge model to serve (default: embedded) |" in entries
    assert "raw model |" in entries  # --adapter: "auto (default): ..." and nothing appended
    # ... and a --x/--no-x pair shows which of the two is in effect.
    train = " ".join(_commands()["train"].format_help().split())
    assert "(drop edge_action from --text-fields too) (default: True)" in train
    supervise = " ".join(_commands()["supervise"].format_help().split())
    assert "--max-steps MAX_STEPS (default: 40)" in supervise  # the command's own default
