"""The text-environment interface every suite implements.

An environment is a multi-step text task: a task description, an observation, the list of
valid actions, and a success signal. Seeds are split into train / dev / test folds so that
routers are trained on train seeds, tuned on dev seeds and reported on test seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Fold = Literal["train", "dev", "test"]

#: What an environment's score means, declared by the environment as a class attribute
#: ``score_kind`` (see `score_kind_of`): ``"progress"`` (the score rises with each part of the
#: task done, e.g. TextWorldExpress) or ``"success"`` (binary: 1.0 once the task is won, else
#: 0.0, e.g. ALFWorld; it says nothing about progress before the end).
ScoreKind = Literal["progress", "success"]
SCORE_KINDS: tuple[ScoreKind, ...] = ("progress", "success")

#: Seed ranges per fold (TextWorldExpress's own convention: train 0-999, dev 10000-10999,
#: test 20000-20999). Every suite uses the same ranges.
FOLD_SEEDS: dict[str, range] = {
    "train": range(0, 1000),
    "dev": range(10000, 11000),
    "test": range(20000, 21000),
}


@dataclass
class EnvStep:
    """What the environment shows the agent after ``reset`` or ``step``.

    Attributes:
        task: The task description (constant over an episode).
        observation: The text the environment returned for the last action.
        valid_actions: The actions the environment accepts now (sorted).
        reward: Reward of the last step (0.0 after reset).
        score: Cumulative score.
        done: Whether the episode ended.
        success: Whether the task was accomplished.
        info: Suite-specific extras (JSON-serialisable).
    """

    task: str
    observation: str
    valid_actions: list[str]
    reward: float = 0.0
    score: float = 0.0
    done: bool = False
    success: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def score_kind_of(env: object) -> ScoreKind:
    """What ``env``'s score means: its ``score_kind`` attribute (`ScoreKind`), ``"progress"``
    for an environment that declares none.

    Raises:
        ValueError: ``env`` declares a kind that is not one of `SCORE_KINDS`.
    """
    kind = getattr(env, "score_kind", "progress")
    if kind not in SCORE_KINDS:
        raise ValueError(f"unknown score_kind {kind!r} of {env!r}; allowed: {list(SCORE_KINDS)}")
    return kind  # type: ignore[no-any-return]


@runtime_checkable
class TextEnv(Protocol):
    """A text environment. Implementations are not thread-safe: one per episode.

    An implementation may declare what its score means as a class attribute ``score_kind``
    (`ScoreKind`; ``"progress"`` when absent, read with `score_kind_of`).
    """

    suite: str

    def reset(self, seed: int) -> EnvStep:
        """Start the episode for ``seed`` (the fold is implied by the seed range)."""
        ...

    def step(self, action: str) -> EnvStep:
        """Execute ``action`` (any text; invalid actions are answered, not raised)."""
        ...

    def expert_action(self) -> str:
        """The optimal next action from the current state (not only along the gold path)."""
        ...

    def close(self) -> None:
        """Release resources (JVMs, processes)."""
        ...
