"""TextWorldExpress games as `TextEnv`s, with an expert that recovers from any state.

Suites and their default difficulty (`TWX_GAMES`; ``TextWorldExpressEnv(suite, game_params=...)``
overrides any of them, the rest keep these defaults):

================  ==============================================================================
suite             default game parameters
================  ==============================================================================
``twc``           ``numLocations=3,numItemsToPutAway=4,includeDoors=0,limitInventorySize=0``
                  (TextWorldExpress's own defaults)
``cookingworld``  ``numLocations=3,numIngredients=2,numDistractorItems=3,includeDoors=0,``
                  ``limitInventorySize=0`` (TextWorldExpress defaults to the hardest setting,
                  11 locations with doors, 10 distractors and 3 ingredients: gold paths of
                  25-85 steps, longer than a routed episode runs)
``coin``          ``numLocations=5,numDistractorItems=0,includeDoors=1,limitInventorySize=0``
                  (TextWorldExpress: 11 locations, inventory limited)
================  ==============================================================================

The parameters each game accepts and their valid ranges are in `TWX_PARAMS` (checked here, with
the allowed names and ranges in the error, before a JVM is started).

TextWorldExpress only gives a gold path from the *initial* state, and that path is a random walk
(it wanders between rooms and opens containers it never uses). A routed agent leaves that path
whenever the edge acts differently, so the expert plans from the current state instead. The game
is deterministic given (seed, actions), so it can replay any episode into the same JVM:

1. Once per episode (at the first expert call) it maps the rooms (a walk that opens every door),
   keeps the gold path's object actions (take, put, open, cook, slice, ...) each with the room it
   was done in, drops every object action the game can be won without and reorders the rest
   while that shortens the win.
2. From any state it simulates the rest of that plan, walking the shortest route between rooms
   (opening doors on the way), skipping actions that are already done and repairing detours
   (re-opening a container, fetching an object from wherever it was put). The shortest
   simulated continuation that wins is followed until the agent leaves it; one world-changing
   recovery action first is tried when no continuation wins. A state from which nothing wins
   is unrecoverable: `last_plan` is then ``None``. (In CookingWorld, eating an ingredient or
   cooking or cutting one the wrong way ends the game at once, as a failure.)

Replaying a whole episode takes a few milliseconds; planning an episode (the first expert call)
a few hundred.

TextWorldExpress's own gold path (``reset(generateGoldPath=True)``) comes from a random walk on an
unseeded ``scala.util.Random``: a different path at every reset and in every process, and with it
a different expert plan (other containers, another order, episodes a step or two longer or
shorter). `gold` is made here instead by the same gold agent on a fresh copy of the game with the
walk seeded by the game's seed (`_seeded_gold_path`), so a seed's gold path, expert plan and
expert episode are the same in every process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph_hera.envs._twx_expert import _Doors, _ExpertPlanner
from langgraph_hera.envs._twx_params import TWX_GAMES, TWX_PARAMS, fold_of, parse_game_params
from langgraph_hera.envs.base import EnvStep, ScoreKind
from langgraph_hera.secrets import get_logger

__all__ = [
    "TWX_GAMES",
    "TWX_PARAMS",
    "TextWorldExpressEnv",
    "fold_of",
    "make_twx",
    "parse_game_params",
]

logger = get_logger(__name__)

#: Each suite's gold agent (``textworldexpress.goldagent``), run by `_seeded_gold_path`.
_GOLD_AGENTS = {
    "twc": "TWCGoldAgent",
    "cookingworld": "CookingWorldGoldAgent",
    "coin": "CoinGoldAgent",
}
#: Games TextWorldExpress tries before giving up on a gold path (``mkGameWithGoldPath``).
_GOLD_ATTEMPTS = 50


class TextWorldExpressEnv(_ExpertPlanner):
    """One TextWorldExpress game (its own JVM) as a `TextEnv`.

    Args:
        suite: ``"twc"``, ``"cookingworld"`` or ``"coin"``.
        game_params: TextWorldExpress game parameters, ``"name=value,..."`` or a mapping (see
            `parse_game_params`); names not given keep the suite's defaults (`TWX_GAMES`).
        step_limit: Episode step limit inside the game.
        search_budget: Most simulated continuations per expert call (the search for a recovery
            action stops there).

    Attributes:
        game_params: The full parameter string the game runs with.
        valid_actions: The actions valid now (sorted).
        history: Actions taken since ``reset``.
        gold: TextWorldExpress's gold path from the start (without ``look around``).
        last_plan: The winning continuation found by the last `expert_action` call (its first
            action is the one returned), ``None`` when none was found: the state is then most
            likely unrecoverable.

    Raises:
        ValueError: Unknown suite or bad game parameters (the message lists the allowed ones).
        ImportError: ``textworld-express`` is not installed
            (``pip install 'langgraph-hera[envs]'``).
    """

    #: The score rises with each part of the task done (see `ScoreKind`).
    score_kind: ScoreKind = "progress"

    def __init__(
        self,
        suite: str = "twc",
        *,
        game_params: str | Mapping[str, int] | None = None,
        step_limit: int = 100,
        search_budget: int = 400,
    ) -> None:
        if suite not in TWX_GAMES:
            raise ValueError(
                f"unknown TextWorldExpress suite {suite!r}; allowed: {list(TWX_GAMES)}"
            )
        self.game_params = parse_game_params(suite, game_params)
        if search_budget < 1:
            raise ValueError(f"search_budget must be >= 1, got {search_budget!r}")
        try:
            from textworld_express import TextWorldExpressEnv as _TWX
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "TextWorldExpress is not installed: pip install 'langgraph-hera[envs]' "
                "(textworld-express, needs Java 11+)"
            ) from exc
        self.suite = suite
        self.search_budget = search_budget
        self._env: Any = _TWX(envStepLimit=step_limit)
        self._closed = False
        try:
            self._env.load(gameName=suite, gameParams=self.game_params)
        except ValueError as exc:
            self.close()
            raise ValueError(
                f"TextWorldExpress rejected {suite} {self.game_params!r}: {exc}"
            ) from exc
        self.seed: int | None = None
        self.history: list[str] = []
        self.valid_actions: list[str] = []
        self.gold: list[str] = []
        self.last_plan: list[str] | None = None
        self._task = ""
        self._last: EnvStep | None = None
        # Per episode: the object-level plan [(action, room)], the room map and door states.
        self._steps: list[tuple[str, str]] | None = None
        self._map: dict[str, dict[str, str]] = {}
        self._doors0: _Doors = {}
        self._origin: dict[str, str] = {}
        # The continuation being followed: (history it starts from, actions).
        self._route: tuple[tuple[str, ...], list[str]] | None = None
        # The first history from which the expert found nothing that wins.
        self._dead: tuple[str, ...] | None = None
        # The JVM holds the live episode; simulations replay into it and restore it afterwards.
        self._jvm_history: list[str] | None = None

    # -- TextEnv ------------------------------------------------------------------------------

    def reset(self, seed: int) -> EnvStep:
        fold = fold_of(int(seed))
        # The game (and its parameters) was loaded once in __init__: no reload per reset.
        obs, info = self._env.reset(seed=int(seed), gameFold=fold)
        self.history = []
        self._jvm_history = []
        if int(seed) != self.seed:
            # The gold path, object plan and room map belong to the game: kept when the same
            # seed is reset again (replays of recorded states reset it once per state).
            self.gold = [a for a in self._seeded_gold_path(int(seed)) if a != "look around"]
            self._steps = None
        self.seed = int(seed)
        self._route = None
        self._dead = None
        self.last_plan = None
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

        Follows the continuation found at an earlier call while the agent stays on it, otherwise
        searches again (see the module docstring). When nothing wins (``last_plan`` is ``None``)
        it falls back to a not-yet-done gold action that is valid now, then to ``"look around"``.
        """
        if self.seed is None:
            raise RuntimeError("call reset(seed) before expert_action()")
        t = len(self.history)
        if self._route is not None:
            start, actions = self._route
            n = len(start)
            if (
                n <= t < n + len(actions)
                and tuple(self.history[:n]) == start
                and self.history[n:] == actions[: t - n]
            ):
                self.last_plan = actions[t - n :]
                return actions[t - n]
        try:
            best = self._search()
        finally:
            self._restore()
        if best:
            self._route = (tuple(self.history), best)
            self.last_plan = best
            return best[0]
        self._route = None
        self.last_plan = None
        logger.info("expert: no winning continuation found (seed %s, step %d)", self.seed, t)
        done = set(self.history)
        for a in self.gold:
            if a not in done and a in self.valid_actions:
                return a
        return "look around" if "look around" in self.valid_actions else self.valid_actions[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._env.close()
            # Wait for the JVM to exit, so that the wrapper's own __del__ (which closes again)
            # does not write to a dead pipe at interpreter exit.
            self._env._gateway.java_process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing a dead JVM is not an error
            logger.debug("closing TextWorldExpress failed", exc_info=True)

    # -- internals -----------------------------------------------------------------------------

    def _seeded_gold_path(self, seed: int) -> list[str]:
        """TextWorldExpress's gold path of game ``seed``, its random walk seeded by ``seed``.

        Runs the suite's gold agent (the one ``reset(generateGoldPath=True)`` runs, whose walk
        draws from an unseeded ``scala.util.Random``) on a fresh copy of the game with
        ``scala.util.Random(seed)``, retrying on new copies like TextWorldExpress does (the
        walk can fail). The live episode in the JVM is not touched.

        Returns:
            The gold path (with TextWorldExpress's leading ``look around``), ``[]`` when every
            attempt failed.
        """
        jvm = self._env._gateway.jvm
        generator = self._env.server.gameGenerator()
        agent = getattr(jvm.textworldexpress.goldagent, _GOLD_AGENTS[self.suite])
        rng = jvm.scala.util.Random(seed)
        fold = fold_of(seed)
        for _ in range(_GOLD_ATTEMPTS):
            result = agent(generator.mkGame(seed, fold)).mkGoldPath(rng)
            if result._1:  # a scala.Tuple2 (success, actions); py4j reads its fields
                return [str(a) for a in result._2]
        logger.warning("no gold path for %s seed %s", self.suite, seed)
        return []

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


def make_twx(suite: str, **kwargs: Any) -> TextWorldExpressEnv:
    """A `TextWorldExpressEnv` for ``suite`` (keyword arguments are passed on)."""
    return TextWorldExpressEnv(suite, **kwargs)
