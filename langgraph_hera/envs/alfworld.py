"""ALFWorld-style household tasks, generated offline, as `TextEnv`s.

ALFWorld's own games need a download; its wheel ships only the PDDL domain (``alfred.pddl``) and
the text grammar (``alfred.twl2``). This module generates the games itself: a seed gives a
household scene (a kitchen, living room, bedroom or bathroom: receptacles such as countertops,
cabinets, drawers, a fridge, a microwave, a sink basin, shelves, with objects in and on them)
and a task of one of ALFWorld's six task types (`TASK_TYPES`, chosen by ``seed % 6`` so that
every fold covers all six). The scene is written as a PDDL problem next to ALFWorld's domain
and grammar (a ``*.tw-pddl`` game file, cached under `default_cache_dir`) and played by
TextWorld's PDDL backend, so observations and admissible commands are ALFWorld's own
(``go to countertop 1``, ``open fridge 1``, ``take apple 1 from countertop 1``,
``heat apple 1 with microwave 1``, ``move apple 1 to fridge 1``, ``use desklamp 1``, ...).

The expert is the planner (Fast Downward through TextWorld, ALFWorld's ``policy_commands``):
`AlfWorldEnv.expert_action` returns the first action of the plan from the current state. The plan
is followed while the agent follows it and is made again after any other action, so the expert
recovers from any detour (every state of these games is recoverable). Generation is pure Python
and deterministic; ``textworld`` and ``alfworld`` are imported only when an environment is made.

TextWorld's PDDL text generation re-parses grammar strings for every admissible command and deep
copies its contexts (tens to hundreds of ms per step), and it translates each game to SAS four
times per episode. `set_textworld_speedups` (on by default) memoises the parses and the
translations and makes the context copies shallow: the same text and plans at ~3-10 ms per step.
Set ``HERA_ALFWORLD_SPEEDUPS=0`` to play with TextWorld unchanged.

TextWorld's PDDL backend and Fast Downward's translator are not thread-safe (module-level
parsers, the translator's global options), and the episode runner plays environments in worker
threads: every call into them holds one process-wide lock, so the environments of one process
step, reset and plan one at a time (model calls still overlap).
"""

from __future__ import annotations

import os
from typing import Any

from langgraph_hera.envs._alfworld_data import (
    CLEANABLE,
    COOLABLE,
    GENERATOR_VERSION,
    HEATABLE,
    LAMPS,
    OBJECT_RECEPTACLES,
    OPENABLE,
    ROOM_OBJECTS,
    ROOM_RECEPTACLES,
    TASK_ROOMS,
    TASK_TEMPLATES,
    TASK_TYPES,
)
from langgraph_hera.envs._alfworld_games import (
    AlfGame,
    alfworld_logic,
    default_cache_dir,
    game_file,
    generate_game,
)
from langgraph_hera.envs._textworld_speedups import (
    _NOOP_PREFIXES,
    _demangler,
    _textworld_guard,
    set_textworld_speedups,
)
from langgraph_hera.envs._twx_params import fold_of
from langgraph_hera.envs.base import EnvStep, ScoreKind
from langgraph_hera.secrets import get_logger

__all__ = [
    "CLEANABLE",
    "COOLABLE",
    "GENERATOR_VERSION",
    "HEATABLE",
    "LAMPS",
    "OBJECT_RECEPTACLES",
    "OPENABLE",
    "ROOM_OBJECTS",
    "ROOM_RECEPTACLES",
    "TASK_ROOMS",
    "TASK_TEMPLATES",
    "TASK_TYPES",
    "AlfGame",
    "AlfWorldEnv",
    "alfworld_logic",
    "default_cache_dir",
    "game_file",
    "generate_game",
    "make_alfworld",
    "set_textworld_speedups",
]

logger = get_logger(__name__)


class AlfWorldEnv:
    """An ALFWorld-style household task (generated offline) as a `TextEnv`.

    One TextWorld PDDL environment (and one copy of Fast Downward's library) is kept for the
    object's lifetime and loads each episode's game file on `reset`.

    Args:
        max_steps: Episode step limit (ALFWorld evaluates with 50); every action counts, valid
            or not.
        cache_dir: Where generated game files are cached (default: `default_cache_dir`).
        speedups: Install `set_textworld_speedups` (default: yes unless the environment variable
            ``HERA_ALFWORLD_SPEEDUPS`` is ``0``).

    Attributes:
        suite: ``"alfworld"``.
        seed: The seed of the current episode.
        game: The generated game of the current episode.
        valid_actions: ALFWorld's admissible commands now (sorted).
        history: Actions taken since ``reset``.
        gold: The planner's plan from the start of the episode.
        last_plan: The planner's plan from the state of the last `expert_action` call (its first
            action is the one returned), ``None`` when the planner found none.
        replans: Planner calls since ``reset`` (the expert follows a plan while the agent does).

    Raises:
        ValueError: ``max_steps`` < 1.
        ImportError: ``textworld`` (with its PDDL backend ``fast-downward-textworld``) or
            ``alfworld`` is not installed.
    """

    suite = "alfworld"
    #: The score is 1.0 only once the task is won (see `ScoreKind`).
    score_kind: ScoreKind = "success"

    def __init__(
        self,
        *,
        max_steps: int = 50,
        cache_dir: str | os.PathLike[str] | None = None,
        speedups: bool | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
        try:
            import fast_downward  # noqa: F401
            import textworld
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "the ALFWorld suite needs TextWorld's PDDL backend: pip install textworld "
                "fast-downward-textworld (see scripts/setup.sh for a lean install)"
            ) from exc
        alfworld_logic()  # fail early when alfworld is missing
        if speedups is None:
            speedups = os.environ.get("HERA_ALFWORLD_SPEEDUPS", "1") != "0"
        if speedups:
            set_textworld_speedups(True)
        self._textworld = textworld
        self.max_steps = max_steps
        self.cache_dir = cache_dir
        self.seed: int | None = None
        self.game: AlfGame | None = None
        self.history: list[str] = []
        self.valid_actions: list[str] = []
        self.gold: list[str] = []
        self.last_plan: list[str] | None = None
        self.replans = 0
        self._env: Any = None
        self._state: Any = None
        self._last: EnvStep | None = None
        # State-changing actions since reset, and the plan being followed:
        # (the effective history it was made at, its actions).
        self._effective: list[str] = []
        self._route: tuple[tuple[str, ...], list[str]] | None = None

    # -- TextEnv ------------------------------------------------------------------------------

    def reset(self, seed: int) -> EnvStep:
        seed = int(seed)
        fold_of(seed)  # ValueError for a seed in no fold
        path = str(game_file(seed, self.cache_dir))
        self.game = generate_game(seed)
        with _textworld_guard():
            if self._env is None:
                infos = self._textworld.EnvInfos(admissible_commands=True, won=True)
                self._env = self._textworld.start(
                    path, request_infos=infos, wrappers=[_demangler()]
                )
            else:
                self._env.load(path)
            self._state = self._env.reset()
        self.seed = seed
        self.history = []
        self._effective = []
        self._route = None
        self.last_plan = None
        self.replans = 0
        # ALFWorld agents see the text without TextWorld's banner.
        feedback = str(self._state.feedback).split("=-\n\n", 1)[-1].strip()
        self._last = self._to_step(feedback, reward=0.0)
        self.gold = list(self._plan())
        if not self.gold:
            logger.warning("alfworld: the planner found no plan for seed %s", seed)
        return self._last

    def step(self, action: str) -> EnvStep:
        if self._env is None or self._last is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._last.done:
            raise RuntimeError(f"the episode of seed {self.seed} is over; call reset()")
        action = str(action).strip()
        if action in self.valid_actions and not action.startswith(_NOOP_PREFIXES):
            self._effective.append(action)
        won_before = bool(self._state["won"])
        with _textworld_guard():
            self._state, _, _ = self._env.step(action)
        self.history.append(action)
        won = bool(self._state["won"])
        reward = 1.0 if won and not won_before else 0.0
        self._last = self._to_step(str(self._state.feedback).strip(), reward=reward)
        return self._last

    def expert_action(self) -> str:
        """The first action of the planner's plan from the current state.

        The plan is made by TextWorld's planner (Fast Downward, ALFWorld's ``policy_commands``)
        and followed while the agent follows it (also across actions that change nothing, such
        as ``look``); any other action makes it replan from the new state. When the planner
        finds no plan (or the episode is won), falls back to the first action of the hand-made
        walkthrough not yet taken that is valid now, then to ``"look"``.
        """
        if self._env is None or self._last is None:
            raise RuntimeError("call reset(seed) before expert_action()")
        plan = self._plan()
        if plan:
            self.last_plan = list(plan)
            return plan[0]
        self.last_plan = None
        if not self._state["won"]:
            logger.warning(
                "alfworld expert: the planner found no plan (seed %s, step %d)",
                self.seed,
                len(self.history),
            )
        done = set(self.history)
        assert self.game is not None
        for a in self.game.walkthrough:
            if a not in done and a in self.valid_actions:
                return a
        return "look"

    def close(self) -> None:
        if self._env is None:
            return
        env, self._env = self._env, None
        try:
            # The planner library copy is deliberately not unloaded (fast_downward.close_lib):
            # dlclose-ing it and then loading a new copy in the same process segfaulted (seen
            # in the test suite). One copy per environment stays mapped until the process ends.
            with _textworld_guard():
                env.close()
        except Exception:  # noqa: BLE001 - closing a half-made env is not an error
            logger.debug("closing the TextWorld env failed", exc_info=True)

    # -- internals ----------------------------------------------------------------------------

    def _plan(self) -> list[str]:
        """The planner's plan from the current state (the followed plan's rest while on it)."""
        if self._state["won"]:
            return []
        if self._route is not None:
            start, actions = self._route
            n, t = len(start), len(self._effective)
            if (
                n <= t <= n + len(actions)
                and tuple(self._effective[:n]) == start
                and self._effective[n:] == actions[: t - n]
                and t < n + len(actions)
                and actions[t - n] in self.valid_actions
            ):
                return actions[t - n :]
        pddl = self._pddl_env(self._env)
        with _textworld_guard():
            plan = [str(a) for a in pddl._pddl_state.replan(pddl._entity_infos)]
        self.replans += 1
        self._route = (tuple(self._effective), plan) if plan else None
        return plan

    @staticmethod
    def _pddl_env(env: Any) -> Any:
        """The `PddlEnv` under the wrappers (TextWorld's planner lives on its state)."""
        while not hasattr(env, "downward_lib"):
            env = env._wrapped_env
        return env

    def _to_step(self, observation: str, reward: float) -> EnvStep:
        assert self.game is not None
        self.valid_actions = sorted(str(a) for a in self._state["admissible_commands"])
        won = bool(self._state["won"])
        out_of_steps = len(self.history) >= self.max_steps
        return EnvStep(
            task=self.game.task,
            observation=observation,
            valid_actions=list(self.valid_actions),
            reward=reward,
            score=1.0 if won else 0.0,
            done=won or out_of_steps,
            success=won,
            info={
                "moves": len(self.history),
                "task_type": self.game.task_type,
                "room": self.game.room,
                "failure": out_of_steps and not won,
            },
        )


def make_alfworld(**kwargs: Any) -> AlfWorldEnv:
    """An `AlfWorldEnv` (keyword arguments are passed on)."""
    return AlfWorldEnv(**kwargs)
