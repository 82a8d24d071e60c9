"""The TextWorldExpress expert's planner (see `langgraph_hera.envs.twx`): the room map, the pruned
and reordered object plan, and simulated continuations replayed into the game's JVM."""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph_hera.envs._twx_params import fold_of
from langgraph_hera.secrets import get_logger

# The expert's messages keep the name of the module that documents it.
logger = get_logger("langgraph_hera.envs.twx")

#: Actions that never change the world.
_NOOP_PREFIXES = ("look", "inventory", "examine", "read")
#: Object actions that may be done wherever they are valid (the others go to the plan's room).
_ANYWHERE_PREFIXES = ("take ", "chop ", "slice ", "dice ", "eat ", "read ", "prepare ")
#: Most simulations spent reordering an episode's plan (once per episode).
_REORDER_BUDGET = 150
_OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
_ROOM_RE = re.compile(r"You are in the ([^.]+)\.")
_EXIT_RE = re.compile(
    r"(Through an open [^,.]+, to|To) the (North|South|East|West) you see (?:the )?([^.]+)\."
)

#: (room, direction) -> whether its door is open.
_Doors = dict[tuple[str, str], bool]


def _room(info: Mapping[str, Any]) -> str:
    match = _ROOM_RE.search(str(info.get("look", "")))
    return match.group(1) if match else ""


def _exits(info: Mapping[str, Any]) -> dict[str, tuple[str | None, bool | None]]:
    """Direction -> (neighbour or None behind a closed door, door open / closed / None)."""
    look = str(info.get("look", ""))
    exits: dict[str, tuple[str | None, bool | None]] = {}
    for through, direction, what in _EXIT_RE.findall(look[look.find("\n") + 1 :]):
        d = direction.lower()
        if through.startswith("Through"):
            exits[d] = (what, True)
        elif what.startswith("a closed "):
            exits[d] = (None, False)
        else:
            exits[d] = (what, None)
    return exits


def _holding(info: Mapping[str, Any], obj: str) -> bool:
    inventory = str(info.get("inventory", ""))
    return re.search(rf"\b{re.escape(obj)}\b", inventory) is not None


@dataclass
class _Sim:
    actions: list[str]
    success: bool


class _World:
    """What a trajectory has shown so far: the doors' states and where objects were put."""

    def __init__(self, rooms: Mapping[str, dict[str, str]], doors: _Doors) -> None:
        self.rooms = rooms
        self.doors = dict(doors)
        #: object -> (room, container) it was last put in.
        self.put_at: dict[str, tuple[str, str]] = {}

    def see(self, action: str, info: Mapping[str, Any]) -> None:
        """Update from ``info``, the game's answer to ``action``."""
        room = _room(info)
        for d, (_, is_open) in _exits(info).items():
            if (room, d) in self.doors and is_open is not None:
                self.doors[(room, d)] = is_open
                nb = self.rooms.get(room, {}).get(d)
                if nb is not None:
                    self.doors[(nb, _OPPOSITE[d])] = is_open
        verb, obj, container = _parts(action)
        if verb == "put" and container and not _holding(info, obj):
            self.put_at[obj] = (room, container)
        elif verb == "take" and _holding(info, obj):
            self.put_at.pop(obj, None)


def _parts(action: str) -> tuple[str, str, str]:
    """``"put apple in fridge"`` -> ``("put", "apple", "fridge")``; no container: ``""``."""
    verb, _, rest = action.partition(" ")
    if verb in ("put", "cook") and " in " in rest:
        obj, _, container = rest.partition(" in ")
        return verb, obj, container
    return verb, rest, ""


class _Run:
    """One simulated continuation in the JVM: the actions played and what they showed."""

    def __init__(self, env: Any, info: dict[str, Any], world: _World, limit: int) -> None:
        self.env = env
        self.info = info
        self.world = world
        self.limit = limit
        self.played: list[str] = []

    @property
    def valid(self) -> set[str]:
        return set(self.info.get("validActions", []))

    @property
    def room(self) -> str:
        return _room(self.info)

    @property
    def over(self) -> bool:
        return bool(self.info.get("tasksuccess") or self.info.get("taskfailure"))

    def step(self, action: str) -> bool:
        """Play ``action``; False when the step budget is spent or the game is over."""
        if self.over or len(self.played) >= self.limit:
            return False
        _, _, _, self.info = self.env.step(action)
        self.played.append(action)
        self.world.see(action, self.info)
        return not self.over


class _ExpertPlanner:
    """The expert's planning over a replayable game (a base of `TextWorldExpressEnv`, which sets
    these attributes)."""

    suite: str
    seed: int | None
    history: list[str]
    valid_actions: list[str]
    gold: list[str]
    search_budget: int
    _env: Any
    _steps: list[tuple[str, str]] | None
    _map: dict[str, dict[str, str]]
    _doors0: _Doors
    _origin: dict[str, str]
    _dead: tuple[str, ...] | None
    _jvm_history: list[str] | None

    # -- replay ---------------------------------------------------------------------------------

    def _replay(self, actions: Sequence[str], world: _World | None = None) -> dict[str, Any]:
        """Reset the JVM to this episode's start and play ``actions``; the last info.

        ``world`` (if given) sees every step.
        """
        assert self.seed is not None
        self._jvm_history = None
        _, info = self._env.reset(seed=self.seed, gameFold=fold_of(self.seed))
        for a in actions:
            _, _, _, info = self._env.step(a)
            if world is not None:
                world.see(a, info)
        return dict(info)

    def _restore(self) -> None:
        if self._jvm_history != self.history:
            self._replay(self.history)
            self._jvm_history = list(self.history)

    def _start(self, base: Sequence[str], limit: int) -> _Run:
        world = _World(self._map, self._doors0)
        return _Run(self._env, self._replay(base, world), world, limit)

    # -- the plan --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Map the rooms and turn the gold path into a pruned, room-annotated object plan."""
        self._explore()
        run = self._start([], limit=10**6)
        annotated: list[tuple[str, str]] = []
        for a in self.gold:
            annotated.append((a, _room(run.info)))
            run.step(a)
        if not run.info.get("tasksuccess"):
            logger.warning("gold path of %s seed %s does not win", self.suite, self.seed)
        # Where each object the gold path takes was (to fetch it again).
        self._origin = {a[5:]: r for a, r in reversed(annotated) if a.startswith("take ")}
        objects = [
            (a, r)
            for a, r in annotated
            if not a.startswith(("move ", "open door", "close", *_NOOP_PREFIXES[:3]))
        ]
        plan = objects if self._execute([], objects).success else annotated
        best = self._execute([], plan)
        i = 0
        while best.success and i < len(plan):
            shorter = plan[:i] + plan[i + 1 :]
            sim = self._execute([], shorter, limit=len(best.actions))
            if sim.success:
                plan, best = shorter, sim
            else:
                i += 1
        # The gold order is a random walk's: move single actions elsewhere while that shortens
        # the win (first improvement, a bounded number of simulations).
        sims, improved = 0, best.success
        while improved:
            improved = False
            for i, j in itertools.permutations(range(len(plan)), 2):
                if sims >= _REORDER_BUDGET:
                    break
                sims += 1
                moved = plan[:i] + plan[i + 1 :]
                moved.insert(j, plan[i])
                sim = self._execute([], moved, limit=len(best.actions) - 1)
                if sim.success and len(sim.actions) < len(best.actions):
                    plan, best, improved = moved, sim, True
                    break
        self._steps = plan
        logger.debug("expert plan for %s seed %s: %s", self.suite, self.seed, plan)

    def _explore(self) -> None:
        """Walk every room from the start (opening every door) to learn the map."""
        self._map, self._doors0 = {}, {}
        info = self._replay([])

        def act(action: str) -> None:
            nonlocal info
            _, _, _, info = self._env.step(action)

        def visit() -> None:
            room = _room(info)
            for d, (_, is_open) in _exits(info).items():
                if is_open is not None:
                    self._doors0.setdefault((room, d), is_open)
            for d in _OPPOSITE:
                if f"open door to {d}" in info.get("validActions", []):
                    self._doors0.setdefault((room, d), False)
                    act(f"open door to {d}")
            self._map[room] = {d: nb for d, (nb, _) in _exits(info).items() if nb}
            for d, nb in list(self._map[room].items()):
                if (room, d) in self._doors0:
                    self._doors0.setdefault((nb, _OPPOSITE[d]), self._doors0[(room, d)])
                if nb not in self._map and f"move {d}" in info.get("validActions", []):
                    act(f"move {d}")
                    if _room(info) == nb:
                        visit()
                    act(f"move {_OPPOSITE[d]}")

        visit()

    def _path(self, start: str, goal: str, doors: _Doors) -> list[str] | None:
        """Cheapest directions from ``start`` to ``goal`` (a closed door costs a step more)."""
        queue: list[tuple[int, int, str, list[str]]] = [(0, 0, start, [])]
        seen: set[str] = set()
        tie = 0
        while queue:
            cost, _, room, path = heapq.heappop(queue)
            if room == goal:
                return path
            if room in seen:
                continue
            seen.add(room)
            for d, nb in self._map.get(room, {}).items():
                if nb not in seen:
                    tie += 1
                    extra = 0 if doors.get((room, d), True) else 1
                    heapq.heappush(queue, (cost + 1 + extra, tie, nb, [*path, d]))
        return None

    def _goto(self, run: _Run, goal: str) -> bool:
        """Walk to ``goal`` (opening doors); False when there is no way or no budget."""
        for _ in range(4 * len(self._map) + 4):
            here = _room(run.info)
            if here == goal:
                return True
            path = self._path(here, goal, run.world.doors)
            if not path:
                return False
            d = path[0]
            if f"move {d}" in run.valid:
                ok = run.step(f"move {d}")
            elif f"open door to {d}" in run.valid:
                ok = run.step(f"open door to {d}")
            else:
                return False
            if not ok:
                return False
        return False

    def _execute(  # noqa: C901
        self,
        base: Sequence[str],
        plan: Sequence[tuple[str, str]],
        prefix: Sequence[str] = (),
        limit: int = 10**6,
    ) -> _Sim:
        """Play ``base`` + ``prefix``, then ``plan`` leniently; the actions played after base.

        Object actions bound to a room (open, put, cook, prepare) are done in their plan room,
        walking there first; the others wherever they are valid. Actions already done are
        skipped (an object already put where the plan puts it is not taken again), objects an
        action needs are fetched (from where they were last put, or where the gold path took
        them) and containers opened; an action that stays impossible is skipped.
        """
        run = self._start(base, limit)
        for a in prefix:
            if not run.step(a):
                return _Sim(run.played, bool(run.info.get("tasksuccess")))
        goals = {}
        for action, room in plan:
            verb, obj, container = _parts(action)
            if verb == "put":
                goals[obj] = (room, container)
        for action, room in plan:
            if run.over or len(run.played) >= limit:
                break
            verb, obj, container = _parts(action)
            if verb in ("take", "put") and obj in goals and run.world.put_at.get(obj) == goals[obj]:
                continue  # already where the plan puts it
            if action in run.valid and (action.startswith(_ANYWHERE_PREFIXES) or not room):
                run.step(action)
                continue
            if verb in ("move", "look", "inventory", "examine") or action.startswith("open door"):
                if action in run.valid:
                    run.step(action)
                continue
            if verb == "take":
                self._fetch(run, obj, room)
                continue
            if verb in ("put", "cook", "chop", "slice", "dice"):
                self._fetch(run, obj, self._origin.get(obj, ""))
            if verb in ("chop", "slice", "dice"):
                self._fetch(run, "knife", self._origin.get("knife", ""))
            elif room and room != run.room and room in self._map and not self._goto(run, room):
                break
            if container and action not in run.valid and f"open {container}" in run.valid:
                run.step(f"open {container}")
            if action in run.valid:
                run.step(action)
        return _Sim(run.played, bool(run.info.get("tasksuccess")))

    def _fetch(self, run: _Run, obj: str, room: str) -> bool:
        """Hold ``obj``: take it here, where it was last put, or in ``room`` (opening what it
        may be in). False when that failed."""
        if _holding(run.info, obj):
            return True
        if f"take {obj}" not in run.valid:
            where, container = run.world.put_at.get(obj, (room, ""))
            if where and where != run.room and where in self._map and not self._goto(run, where):
                return False
            if f"take {obj}" not in run.valid and container and f"open {container}" in run.valid:
                run.step(f"open {container}")
            # Still hidden: it is in a closed container here; open them one by one.
            for a in sorted(run.valid):
                if f"take {obj}" in run.valid or run.over:
                    break
                if a.startswith("open ") and not a.startswith("open door"):
                    run.step(a)
        return f"take {obj}" in run.valid and run.step(f"take {obj}")

    def _search(self) -> list[str] | None:
        """The shortest winning continuation from the current state, or None."""
        if self._steps is None:
            self._prepare()
        assert self._steps is not None
        plan = self._steps
        done = set(self.history)
        # Suffixes of the plan: the whole plan (actions already done are skipped) and every
        # suffix right after an action the agent did (some done actions are valid again and
        # would be wasted, e.g. taking back an object that was put away).
        starts = [0] + [k + 1 for k, (a, _) in enumerate(plan[:-1]) if a in done]
        best: list[str] | None = None
        sims = 0
        for k in dict.fromkeys(starts):
            sims += 1
            limit = len(best) - 1 if best is not None else 10**6
            sim = self._execute(self.history, plan[k:], limit=limit)
            if sim.success and sim.actions and (best is None or len(sim.actions) < len(best)):
                best = sim.actions
        dead = self._dead is not None and tuple(self.history[: len(self._dead)]) == self._dead
        if best is not None or dead:
            # After a state from which nothing won, later states are searched for plain plan
            # suffixes only: the damage (an ingredient eaten, cooked wrongly) stays.
            return best
        # Nothing wins from here: try one world-changing recovery action first.
        world = [a for a in self.valid_actions if not a.startswith((*_NOOP_PREFIXES, "eat "))]
        for a in world:
            if sims >= self.search_budget:
                break
            sims += 1
            limit = len(best) - 1 if best is not None else 10**6
            sim = self._execute(self.history, plan, prefix=[a], limit=limit)
            if sim.success and (best is None or len(sim.actions) < len(best)):
                best = sim.actions
        if best is None:
            self._dead = tuple(self.history)
        return best
