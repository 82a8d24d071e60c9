"""ALFWorld-style games generated offline: a seed's scene and task (`generate_game`), its PDDL
problem, and its cached ``*.tw-pddl`` game file (`game_file`). Pure Python and deterministic;
``alfworld`` is imported only for its PDDL domain and grammar."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from langgraph_hera.envs._alfworld_data import (
    _APPLIANCE,
    _NO_TRASH,
    _PROPERTY,
    _STATE_FACT,
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
from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)


# -- generation (pure Python) -----------------------------------------------------------------


@dataclass
class AlfGame:
    """A generated game: scene, task and its PDDL problem.

    Attributes:
        seed: The seed it was generated from.
        task_type: One of `TASK_TYPES`.
        room: ``Kitchen``, ``LivingRoom``, ``Bedroom`` or ``Bathroom``.
        task: The task description (``"put a clean apple in fridge."``).
        target: The object type to handle (``"Apple"``).
        receptacle: The receptacle type to put it in (``""`` for look_at_obj_in_light).
        toggle: The lamp type to look under (``""`` unless look_at_obj_in_light).
        receptacles: Receptacle instances as (type, number).
        objects: Object instances as (type, number, receptacle type, receptacle number).
        walkthrough: A hand-made plan that wins from the start (not necessarily the shortest).
    """

    seed: int
    task_type: str
    room: str
    task: str
    target: str
    receptacle: str
    toggle: str
    receptacles: list[tuple[str, int]] = field(default_factory=list)
    objects: list[tuple[str, int, str, int]] = field(default_factory=list)
    walkthrough: list[str] = field(default_factory=list)

    def pddl_problem(self) -> str:
        """The PDDL problem (ALFWorld's ``alfred`` domain) of this game."""
        return _pddl_problem(self)


def _rid(rtype: str, n: int) -> str:
    return f"{rtype}_bar_{n}"


def _name(kind: str, n: int) -> str:
    return f"{kind.lower()} {n}"


def generate_game(seed: int) -> AlfGame:
    """The game of ``seed`` (deterministic; any int, folds are checked by the environment).

    Args:
        seed: The seed; ``seed % 6`` picks the task type (`TASK_TYPES`).

    Returns:
        The generated game.
    """
    task_type = TASK_TYPES[seed % len(TASK_TYPES)]
    for attempt in range(100):
        rng = random.Random(f"alfworld-v{GENERATOR_VERSION}-{seed}-{attempt}")
        game = _try_generate(seed, task_type, rng)
        if game is not None:
            return game
    msg = f"no {task_type} game could be generated for seed {seed}"
    raise RuntimeError(msg)  # pragma: no cover - every seed of the folds generates


def _try_generate(seed: int, task_type: str, rng: random.Random) -> AlfGame | None:  # noqa: C901
    room = rng.choice(TASK_ROOMS[task_type])
    counts = {rtype: rng.randint(lo, hi) for rtype, lo, hi in ROOM_RECEPTACLES[room]}
    appliance = _APPLIANCE.get(task_type)
    if appliance is not None:
        counts[appliance] = max(1, counts.get(appliance, 0))
    present = {r for r, n in counts.items() if n > 0}

    # The task: an object type, a target receptacle type (or a lamp).
    toggle = ""
    if task_type == "look_at_obj_in_light":
        lamps = [lamp for lamp, on in LAMPS.items() if present & set(on)]
        if not lamps:
            return None
        toggle = rng.choice(lamps)
    candidates = []
    for obj in ROOM_OBJECTS[room]:
        if task_type in _PROPERTY and obj not in _PROPERTY[task_type]:
            continue
        holders = [r for r in OBJECT_RECEPTACLES[obj] if r in present]
        if task_type == "look_at_obj_in_light":
            if holders:
                candidates.append((obj, ""))
            continue
        for recep in holders:
            # The object must start somewhere else than the target type.
            if recep == appliance or not [h for h in holders if h != recep]:
                continue
            if recep == "GarbageCan" and task_type in _NO_TRASH:
                continue
            candidates.append((obj, recep))
    if not candidates:
        return None
    target, recep = rng.choice(candidates)

    # Receptacle instances, numbered per type.
    receptacles = [(rtype, n) for rtype in sorted(present) for n in range(1, counts[rtype] + 1)]

    # Objects: the target (1-3 instances; 2-3 for two-object tasks) and distractors.
    n_target = rng.randint(2, 3) if task_type == "pick_two_obj_and_place" else rng.randint(1, 2)
    others = [o for o in ROOM_OBJECTS[room] if o != target]
    rng.shuffle(others)
    kinds: list[tuple[str, int]] = [(target, n_target)]
    for obj in others[: rng.randint(6, 10)]:
        kinds.append((obj, rng.randint(1, 2)))
    objects: list[tuple[str, int, str, int]] = []
    for obj, count in kinds:
        spots = [r for r in receptacles if r[0] in OBJECT_RECEPTACLES[obj]]
        if obj == target:
            spots = [r for r in spots if r[0] != recep]
        if not spots:
            continue
        numbers = list(range(1, count + 1))
        rng.shuffle(numbers)
        for n in numbers:
            rtype, rn = rng.choice(spots)
            objects.append((obj, n, rtype, rn))
    if toggle:
        rtype, rn = rng.choice([r for r in receptacles if r[0] in LAMPS[toggle]])
        objects.append((toggle, 1, rtype, rn))

    template = rng.choice(TASK_TEMPLATES[task_type])
    text = template.format(obj=target.lower(), recep=recep.lower(), toggle=toggle.lower()) + "."
    game = AlfGame(
        seed=seed, task_type=task_type, room=room, task=text, target=target, receptacle=recep,
        toggle=toggle, receptacles=receptacles, objects=objects,
    )  # fmt: skip
    game.walkthrough = _walkthrough(game)
    return game


def _walkthrough(game: AlfGame) -> list[str]:
    """A winning plan from the start, made by hand (the planner's is usually shorter)."""
    plan: list[str] = []
    opened: set[tuple[str, int]] = set()
    at: tuple[str, int] | None = None

    def go(r: tuple[str, int]) -> None:
        nonlocal at
        if at != r:
            plan.append(f"go to {_name(*r)}")
            at = r
        if r[0] in OPENABLE and r not in opened:
            plan.append(f"open {_name(*r)}")
            opened.add(r)

    def first(rtype: str) -> tuple[str, int]:
        return next(r for r in game.receptacles if r[0] == rtype)

    mine = [o for o in game.objects if o[0] == game.target]
    wanted = 2 if game.task_type == "pick_two_obj_and_place" else 1
    for obj, n, rtype, rn in mine[:wanted]:
        go((rtype, rn))
        plan.append(f"take {_name(obj, n)} from {_name(rtype, rn)}")
        if game.task_type == "look_at_obj_in_light":
            lamp = next(o for o in game.objects if o[0] == game.toggle)
            go((lamp[2], lamp[3]))
            plan.append(f"use {_name(lamp[0], lamp[1])}")
            return plan
        appliance = _APPLIANCE.get(game.task_type)
        if appliance is not None:
            app = first(appliance)
            if at != app:
                plan.append(f"go to {_name(*app)}")
                at = app
            verb = {"SinkBasin": "clean", "Microwave": "heat", "Fridge": "cool"}[appliance]
            plan.append(f"{verb} {_name(obj, n)} with {_name(*app)}")
        go(first(game.receptacle))
        plan.append(f"move {_name(obj, n)} to {_name(*first(game.receptacle))}")
    return plan


def _goal(game: AlfGame) -> str:
    o, r = f"{game.target}Type", f"{game.receptacle}Type"
    if game.task_type == "look_at_obj_in_light":
        return (
            "(and (exists (?ot - object ?r - receptacle ?a - agent ?l - location) "
            f"(and (objectType ?ot {game.toggle}Type) (toggleable ?ot) (isToggled ?ot) "
            "(receptacleAtLocation ?r ?l) (atLocation ?a ?l) (inReceptacle ?ot ?r))) "
            f"(exists (?o - object ?a - agent) (and (objectType ?o {o}) (holds ?a ?o))))"
        )
    if game.task_type == "pick_two_obj_and_place":
        return (
            "(and (exists (?r - receptacle) (exists (?o1 - object) "
            f"(and (objectType ?o1 {o}) (receptacleType ?r {r}) (inReceptacle ?o1 ?r) "
            "(exists (?o2 - object) (and (not (= ?o1 ?o2)) "
            f"(objectType ?o2 {o}) (receptacleType ?r {r}) (inReceptacle ?o2 ?r)))))))"
        )
    extra = ""
    if game.task_type in _STATE_FACT:
        able, state = _STATE_FACT[game.task_type]
        extra = f" ({able} ?o) ({state} ?o)"
    return (
        "(and (exists (?r - receptacle) (exists (?o - object) "
        f"(and (inReceptacle ?o ?r) (objectType ?o {o}) (receptacleType ?r {r}){extra}))))"
    )


def _pddl_problem(game: AlfGame) -> str:
    otypes = sorted({*OBJECT_RECEPTACLES, *LAMPS})
    rtypes = sorted({r for rs in ROOM_RECEPTACLES.values() for r, _, _ in rs})
    lines = [
        "(define (problem alfworld_generated)",
        "(:domain alfred)",
        "(:objects",
        "agent1 - agent",
    ]
    lines += [f"{t}Type - otype" for t in otypes]
    lines += [f"{t}Type - rtype" for t in rtypes]
    lines += [f"{_rid(o, n)} - object" for o, n, _, _ in game.objects]
    lines += [f"{_rid(r, n)} - receptacle" for r, n in game.receptacles]
    lines += ["loc_start - location"] + [
        f"loc_{i} - location" for i in range(len(game.receptacles))
    ]
    lines += [")", "(:init", "(= (total-cost) 0)", "(atLocation agent1 loc_start)"]
    for i, (r, n) in enumerate(game.receptacles):
        rid = _rid(r, n)
        lines += [f"(receptacleType {rid} {r}Type)", f"(receptacleAtLocation {rid} loc_{i})"]
        if r in OPENABLE:
            lines.append(f"(openable {rid})")
    loc = {r: i for i, r in enumerate(game.receptacles)}
    for o, n, r, rn in game.objects:
        oid = _rid(o, n)
        lines += [
            f"(objectType {oid} {o}Type)",
            f"(inReceptacle {oid} {_rid(r, rn)})",
            f"(objectAtLocation {oid} loc_{loc[(r, rn)]})",
        ]
        if o in LAMPS:
            lines.append(f"(toggleable {oid})")
            continue
        lines.append(f"(pickupable {oid})")
        for prop, names in (
            ("heatable", HEATABLE),
            ("coolable", COOLABLE),
            ("cleanable", CLEANABLE),
        ):
            if o in names:
                lines.append(f"({prop} {oid})")
    present = {r for r, _ in game.receptacles}
    for o in sorted({o for o, *_ in game.objects if o not in LAMPS}):
        lines += [f"(canContain {r}Type {o}Type)" for r in OBJECT_RECEPTACLES[o] if r in present]
    lines += [")", f"(:goal {_goal(game)})", ")", ""]
    return "\n".join(lines)


# -- game files --------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/langgraph_hera/alfworld`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "langgraph_hera" / "alfworld"


@functools.lru_cache(maxsize=1)
def alfworld_logic() -> tuple[str, str]:
    """ALFWorld's PDDL domain and TextWorld grammar, read from the installed ``alfworld``.

    Raises:
        ImportError: ``alfworld`` is not installed (``pip install --no-deps alfworld``).
    """
    try:
        import alfworld
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "the ALFWorld suite needs the alfworld package for its PDDL domain and grammar: "
            "pip install --no-deps alfworld==0.4.2 (see scripts/setup.sh)"
        ) from exc
    data = Path(alfworld.__file__).parent / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


def game_file(seed: int, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``*.tw-pddl`` game file of ``seed``, generated on first use and cached.

    The cache key holds the generator version and a hash of ALFWorld's domain and grammar, so a
    new generator or a new ``alfworld`` never reuses stale files.

    Args:
        seed: The seed (any int).
        cache_dir: Where game files live (default: `default_cache_dir`).

    Returns:
        The path of the game file.
    """
    domain, grammar = alfworld_logic()
    digest = hashlib.sha256((domain + "\0" + grammar).encode()).hexdigest()[:10]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"v{GENERATOR_VERSION}-{digest}" / f"{seed}.tw-pddl"
    if path.exists():
        return path
    game = generate_game(seed)
    data = {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", game.task.rstrip(".")),
        "pddl_problem": game.pddl_problem(),
        "solvable": True,  # by construction; the planner's plan at reset confirms it
        "walkthrough": game.walkthrough,
        "task_type": game.task_type,
        "room": game.room,
        "task": game.task,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per writer thread: two threads writing the same seed's file must not
    # share one (the second `os.replace` would find it gone).
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # atomic: concurrent writers of the same seed write the same bytes
    logger.debug("generated ALFWorld game %s (%s, %s)", path, game.task_type, game.room)
    return path
