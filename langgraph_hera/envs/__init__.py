"""Evaluation environments and the offline cloud stand-in.

`make_env` builds a suite's environment by name; `ExpertChatModel` wraps an environment's expert
as a chat model (the **expert stand-in** for the cloud when no cloud model is configured).
TextWorldExpress is imported only when an environment is made.
"""

from __future__ import annotations

from typing import Any

from langgraph_hera.envs.base import (
    FOLD_SEEDS,
    SCORE_KINDS,
    EnvStep,
    Fold,
    ScoreKind,
    TextEnv,
    score_kind_of,
)
from langgraph_hera.envs.expert import STAND_IN_LABEL, ExpertChatModel, count_tokens

__all__ = [
    "FOLD_SEEDS",
    "SCORE_KINDS",
    "STAND_IN_LABEL",
    "SUITES",
    "EnvStep",
    "ExpertChatModel",
    "Fold",
    "ScoreKind",
    "TextEnv",
    "count_tokens",
    "fold_seeds",
    "make_env",
    "score_kind_of",
    "suite_score_kind",
]

#: Suite name -> one-line description.
SUITES: dict[str, str] = {
    "twc": "TextWorldExpress TextWorld-Commonsense: put objects where they belong",
    "cookingworld": "TextWorldExpress CookingWorld: find ingredients, cook the recipe",
    "coin": "TextWorldExpress Coin Collector: find the coin",
    "alfworld": "ALFWorld-style household tasks (6 task types), generated offline, TextWorld PDDL",
}


def fold_seeds(fold: str) -> range:
    """The seeds of a fold (``train``, ``dev`` or ``test``).

    Raises:
        ValueError: Unknown fold.
    """
    if fold not in FOLD_SEEDS:
        raise ValueError(f"unknown fold {fold!r}; allowed: {list(FOLD_SEEDS)}")
    return FOLD_SEEDS[fold]


def _env_class(suite: str) -> type:
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; allowed: {list(SUITES)}")
    if suite == "alfworld":
        from langgraph_hera.envs.alfworld import AlfWorldEnv

        return AlfWorldEnv
    from langgraph_hera.envs.twx import TextWorldExpressEnv

    return TextWorldExpressEnv


def make_env(suite: str, **kwargs: Any) -> TextEnv:
    """A new environment of ``suite`` (one JVM per TextWorldExpress env; ``close()`` it).

    Raises:
        ValueError: Unknown suite (the message lists the allowed ones).
    """
    cls = _env_class(suite)
    env: TextEnv = cls(**kwargs) if suite == "alfworld" else cls(suite, **kwargs)
    return env


def suite_score_kind(suite: str) -> ScoreKind:
    """What ``suite``'s score means (`ScoreKind`, declared by its environment class), without
    making an environment.

    Raises:
        ValueError: Unknown suite (the message lists the allowed ones).
    """
    return score_kind_of(_env_class(suite))
