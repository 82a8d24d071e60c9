"""TextWorldExpress games as `TextEnv`s, with an expert that recovers from any state.

TextWorldExpress only gives a gold path from the *initial* state. A routed agent leaves that
path whenever the edge acts differently, so the expert here plans from the current state: the
game is deterministic given (seed, actions), so it replays the episode into the same JVM and
searches for the shortest continuation that wins (a short prefix of recovery actions, then the
rest of the gold path executed leniently). Replaying a whole episode takes a few milliseconds.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langgraph_hera.envs.base import FOLD_SEEDS, EnvStep, Fold

logger = logging.getLogger(__name__)

#: Game parameters per suite ("" = the game's defaults).
TWX_GAMES: dict[str, str] = {
    "twc": "",
    "cookingworld": "",
    "coin": "",
}

#: Actions that never change the world (not used as recovery steps).
_NOOP_PREFIXES = ("look", "inventory", "examine", "read")


def fold_of(seed: int) -> Fold:
    """The fold a seed belongs to.

    Raises:
        ValueError: The seed is in no fold's range.
    """
    for fold, seeds in FOLD_SEEDS.items():
        if seed in seeds:
            return fold  # type: ignore[return-value]
    ranges = ", ".join(f"{f} {r.start}-{r.stop - 1}" for f, r in FOLD_SEEDS.items())
    raise ValueError(f"seed {seed} is in no fold; allowed: {ranges}")


@dataclass
class _Sim:
    actions: list[str]
    success: bool


class TextWorldExpressEnv:
    """One TextWorldExpress game (its own JVM) as a `TextEnv`.

    Args:
        suite: ``"twc"``, ``"cookingworld"`` or ``"coin"``.
        game_params: TextWorldExpress game parameters (default: the suite's).
        step_limit: Episode step limit inside the game.
        search_budget: Most simulated episodes per expert call before falling back.

    Attributes:
        valid_actions: The actions valid now (sorted).
        history: Actions taken since ``reset``.

    Raises:
        ValueError: Unknown suite.
        ImportError: ``textworld-express`` is not installed
            (``pip install 'langgraph-hera[envs]'``).
    """

    def __init__(
        self,
        suite: str = "twc",
        *,
        game_params: str | None = None,
        step_limit: int = 100,
        search_budget: int = 400,
    ) -> None:
        if suite not in TWX_GAMES:
            raise ValueError(
                f"unknown TextWorldExpress suite {suite!r}; allowed: {list(TWX_GAMES)}"
            )
        try:
            from textworld_express import TextWorldExpressEnv as _TWX
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "TextWorldExpress is not installed: pip install 'langgraph-hera[envs]' "
                "(textworld-express, needs Java 11+)"
            ) from exc
        self.suite = suite
        self.game_params = TWX_GAMES[suite] if game_params is None else game_params
        self.search_budget = search_budget
        self._env: Any = _TWX(envStepLimit=step_limit)
        self._env.load(gameName=suite, gameParams=self.game_params)
        self.seed: int | None = None
        self.history: list[str] = []
        self.valid_actions: list[str] = []
        self.gold: list[str] = []
        self._task = ""
        self._last: EnvStep | None = None
        self._expert_cache: dict[tuple[str, ...], str] = {}
        # The JVM holds the live episode; simulations replay into it and restore it afterwards.
        self._jvm_history: list[str] | None = None

    # -- TextEnv ------------------------------------------------------------------------------

    def reset(self, seed: int) -> EnvStep:
        fold = fold_of(int(seed))
        obs, info = self._env.reset(
            seed=int(seed), gameFold=fold, gameName=self.suite, gameParams=self.game_params,
            generateGoldPath=True,
        )  # fmt: skip
        self.seed = int(seed)
        self.gold = [a for a in self._env.getGoldActionSequence() if a != "look around"]
        self.history = []
        self._jvm_history = []
        self._expert_cache = {}
        self._task = str(info.get("taskDescription", ""))
        self._last = self._to_step(obs, info, reward=0.0)
        return self._last

    def step(self, action: str) -> EnvStep:
        if self.seed is None or self._last is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._last.done:
            raise RuntimeError(f"the episode of seed {self.seed} is over; call reset()")
        self._restore()
        action = str(action)
        obs, reward, _, info = self._env.step(action)
        self.history.append(action)
        self._jvm_history = list(self.history)
        self._last = self._to_step(obs, info, reward=float(reward))
        return self._last

    def expert_action(self) -> str:
        """The first action of the shortest winning continuation found from the current state.

        Returns the next gold action while the agent is on the gold path; otherwise searches
        (recovery prefix of up to two world-changing actions, then the remaining gold actions
        executed leniently). Falls back to the first not-yet-done gold action that is valid
        now, then to ``"look around"``.
        """
        if self.seed is None:
            raise RuntimeError("call reset(seed) before expert_action()")
        key = tuple(self.history)
        if key not in self._expert_cache:
            self._expert_cache[key] = self._plan()
        return self._expert_cache[key]

    def close(self) -> None:
        try:
            self._env.close()
        except Exception:  # noqa: BLE001 - closing a dead JVM is not an error
            logger.debug("closing TextWorldExpress failed", exc_info=True)

    # -- internals ----------------------------------------------------------------------------

    def _to_step(self, obs: str, info: dict[str, Any], reward: float) -> EnvStep:
        self.valid_actions = sorted(str(a) for a in info.get("validActions", []))
        success = bool(info.get("tasksuccess"))
        done = bool(info.get("done")) or success or bool(info.get("taskfailure"))
        return EnvStep(
            task=self._task,
            observation=str(obs),
            valid_actions=list(self.valid_actions),
            reward=reward,
            score=float(info.get("score", 0.0)),
            done=done,
            success=success,
            info={"moves": int(info.get("numMoves", 0)), "failure": bool(info.get("taskfailure"))},
        )

    def _replay(self, actions: Sequence[str]) -> dict[str, Any]:
        """Reset the JVM to this episode's start and play ``actions``; the last info."""
        assert self.seed is not None
        _, info = self._env.reset(
            seed=self.seed, gameFold=fold_of(self.seed), gameName=self.suite,
            gameParams=self.game_params, generateGoldPath=False,
        )  # fmt: skip
        for a in actions:
            _, _, _, info = self._env.step(a)
        self._jvm_history = None
        return dict(info)

    def _restore(self) -> None:
        if self._jvm_history != self.history:
            self._replay(self.history)
            self._jvm_history = list(self.history)

    def _lenient(self, prefix: Sequence[str], plan: Sequence[str], limit: int) -> _Sim:
        """Play history + prefix, then ``plan`` skipping actions that are not valid (taking an
        object first when a put needs it). Returns the actions actually played after history."""
        info = self._replay([*self.history, *prefix])
        played = list(prefix)
        if info.get("tasksuccess"):
            return _Sim(played, True)
        for action in plan:
            if len(played) >= limit:
                break
            valid = set(info.get("validActions", []))
            todo = [action]
            if action not in valid and action.startswith("put ") and " in " in action:
                obj = action[4:].split(" in ")[0]
                if f"take {obj}" in valid:
                    todo = [f"take {obj}", action]
            for a in todo:
                if a not in valid and a != action:
                    continue
                if a not in set(info.get("validActions", [])):
                    continue
                _, _, _, info = self._env.step(a)
                played.append(a)
                if info.get("tasksuccess"):
                    return _Sim(played, True)
                if info.get("taskfailure"):
                    return _Sim(played, False)
        return _Sim(played, False)

    def _plan(self) -> str:
        t = len(self.history)
        if self.history == self.gold[:t] and t < len(self.gold):
            return self.gold[t]
        try:
            best = self._search()
        finally:
            self._restore()
        if best:
            return best[0]
        logger.info("expert: no winning continuation found (seed %s, step %d)", self.seed, t)
        done = set(self.history)
        for a in self.gold:
            if a not in done and a in self.valid_actions:
                return a
        return "look around" if "look around" in self.valid_actions else self.valid_actions[0]

    def _search(self) -> list[str] | None:
        assert self._last is not None
        world = [a for a in self.valid_actions if not a.startswith(_NOOP_PREFIXES)]
        moves = [a for a in world if a.startswith("move ")]
        prefixes: list[tuple[str, ...]] = [()]
        prefixes += [(a,) for a in world]
        prefixes += list(itertools.product(moves, moves))
        best: list[str] | None = None
        sims = 0
        for prefix in prefixes:
            # Shortest prefix first: a win without recovery steps is not searched past.
            if best is not None and len(prefix) > 0:
                break
            for k in range(len(self.gold) + 1):
                if sims >= self.search_budget:
                    return best
                sims += 1
                limit = len(best) - 1 if best is not None else 10**6
                sim = self._lenient(prefix, self.gold[k:], limit)
                if sim.success and sim.actions and (best is None or len(sim.actions) < len(best)):
                    best = sim.actions
        return best


def make_twx(suite: str, **kwargs: Any) -> TextWorldExpressEnv:
    """A `TextWorldExpressEnv` for ``suite`` (keyword arguments are passed on)."""
    return TextWorldExpressEnv(suite, **kwargs)
