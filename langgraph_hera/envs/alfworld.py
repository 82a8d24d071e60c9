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
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import random
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.envs.base import EnvStep
from langgraph_hera.envs.twx import fold_of
from langgraph_hera.secrets import get_logger

logger = get_logger(__name__)

#: Bump when the generator changes what a seed produces (it keys the game-file cache).
GENERATOR_VERSION = 1

#: ALFWorld's six task types; a seed's type is ``TASK_TYPES[seed % 6]``.
TASK_TYPES: tuple[str, ...] = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

#: Task descriptions per type (ALFWorld's templates; one is picked per seed).
TASK_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pick_and_place_simple": ("put a {obj} in {recep}", "put some {obj} on {recep}"),
    "look_at_obj_in_light": (
        "look at {obj} under the {toggle}",
        "examine the {obj} with the {toggle}",
    ),
    "pick_clean_then_place_in_recep": (
        "put a clean {obj} in {recep}",
        "clean some {obj} and put it in {recep}",
    ),
    "pick_heat_then_place_in_recep": (
        "put a hot {obj} in {recep}",
        "heat some {obj} and put it in {recep}",
    ),
    "pick_cool_then_place_in_recep": (
        "put a cool {obj} in {recep}",
        "cool some {obj} and put it in {recep}",
    ),
    "pick_two_obj_and_place": (
        "put two {obj} in {recep}",
        "find two {obj} and put them in {recep}",
    ),
}

#: Rooms each task type can happen in (ALFWorld's ``GOALS_VALID``).
TASK_ROOMS: dict[str, tuple[str, ...]] = {
    "pick_and_place_simple": ("Kitchen", "LivingRoom", "Bedroom", "Bathroom"),
    "look_at_obj_in_light": ("LivingRoom", "Bedroom"),
    "pick_clean_then_place_in_recep": ("Kitchen", "Bathroom"),
    "pick_heat_then_place_in_recep": ("Kitchen",),
    "pick_cool_then_place_in_recep": ("Kitchen",),
    "pick_two_obj_and_place": ("Kitchen", "LivingRoom", "Bedroom", "Bathroom"),
}

#: Receptacles per room: (type, fewest, most).
ROOM_RECEPTACLES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "Kitchen": (
        ("Cabinet", 3, 8), ("CoffeeMachine", 1, 1), ("CounterTop", 1, 3), ("DiningTable", 0, 1),
        ("Drawer", 1, 4), ("Fridge", 1, 1), ("GarbageCan", 1, 1), ("Microwave", 1, 1),
        ("Shelf", 0, 2), ("SinkBasin", 1, 1), ("StoveBurner", 2, 4), ("Toaster", 1, 1),
    ),
    "LivingRoom": (
        ("ArmChair", 0, 2), ("Cabinet", 0, 3), ("CoffeeTable", 1, 1), ("DiningTable", 0, 1),
        ("Drawer", 0, 3), ("Dresser", 0, 1), ("GarbageCan", 1, 1), ("Ottoman", 0, 1),
        ("Shelf", 1, 4), ("SideTable", 1, 2), ("Sofa", 1, 1), ("TVStand", 0, 1),
    ),
    "Bedroom": (
        ("ArmChair", 0, 1), ("Bed", 1, 1), ("Desk", 0, 1), ("Drawer", 2, 5), ("Dresser", 0, 1),
        ("GarbageCan", 1, 1), ("LaundryHamper", 0, 1), ("Safe", 0, 1), ("Shelf", 0, 3),
        ("SideTable", 1, 2),
    ),
    "Bathroom": (
        ("BathtubBasin", 0, 1), ("Cabinet", 1, 4), ("CounterTop", 1, 1), ("Drawer", 0, 3),
        ("GarbageCan", 1, 1), ("HandTowelHolder", 0, 1), ("Shelf", 0, 2), ("SinkBasin", 1, 2),
        ("Toilet", 1, 1), ("ToiletPaperHanger", 1, 1), ("TowelHolder", 1, 1),
    ),
}  # fmt: skip

#: Receptacles that start closed and must be opened.
OPENABLE: frozenset[str] = frozenset({"Cabinet", "Drawer", "Fridge", "Microwave", "Safe"})

_FOOD = ("CounterTop", "DiningTable", "Fridge", "GarbageCan", "Microwave", "SinkBasin")
_DISH = ("Cabinet", "CounterTop", "DiningTable", "Fridge", "Microwave", "Shelf", "SinkBasin")
_DESK = ("CoffeeTable", "Desk", "DiningTable", "Dresser", "SideTable")
_UTENSIL = ("CounterTop", "DiningTable", "Drawer", "SinkBasin")
_SMALL = (*_DESK, "ArmChair", "Bed", "Cabinet", "Drawer", "Ottoman", "Safe", "Shelf", "Sofa",
          "TVStand")  # fmt: skip
_BATH = ("Cabinet", "CounterTop", "Drawer", "GarbageCan", "Shelf", "Toilet")

#: Object type -> receptacle types that can hold it (the ``canContain`` facts).
OBJECT_RECEPTACLES: dict[str, tuple[str, ...]] = {
    # Kitchen.
    "Apple": _FOOD,
    "Bread": ("CounterTop", "DiningTable", "Fridge", "GarbageCan", "Microwave"),
    "Egg": _FOOD,
    "Lettuce": ("CounterTop", "DiningTable", "Fridge", "GarbageCan", "SinkBasin"),
    "Potato": _FOOD,
    "Tomato": _FOOD,
    "Mug": (*_DISH, "CoffeeMachine", "CoffeeTable", "Desk", "Dresser", "SideTable"),
    "Cup": (*_DISH, "CoffeeMachine"),
    "Plate": (*_DISH, "CoffeeTable"),
    "Bowl": (*_DISH, "CoffeeTable", "Desk", "Dresser", "SideTable"),
    "Fork": _UTENSIL,
    "Spoon": _UTENSIL,
    "Knife": _UTENSIL,
    "ButterKnife": _UTENSIL,
    "Spatula": _UTENSIL,
    "Ladle": _UTENSIL,
    "Pan": ("Cabinet", "CounterTop", "DiningTable", "Fridge", "SinkBasin", "StoveBurner"),
    "Pot": ("Cabinet", "CounterTop", "DiningTable", "Fridge", "SinkBasin", "StoveBurner"),
    "Kettle": ("Cabinet", "CounterTop", "DiningTable", "Shelf", "StoveBurner"),
    "SaltShaker": ("Cabinet", "CounterTop", "DiningTable", "Drawer", "Shelf"),
    "PepperShaker": ("Cabinet", "CounterTop", "DiningTable", "Drawer", "Shelf"),
    "DishSponge": ("Cabinet", "CounterTop", "DiningTable", "Drawer", "Shelf", "SinkBasin"),
    "SoapBottle": ("Cabinet", "CounterTop", "DiningTable", "GarbageCan", "Shelf", "Toilet"),
    "WineBottle": ("Cabinet", "CounterTop", "DiningTable", "Fridge", "GarbageCan", "Shelf"),
    "PaperTowelRoll": ("Cabinet", "CounterTop", "DiningTable", "Shelf"),
    # Living room and bedroom.
    "RemoteControl": _SMALL,
    "KeyChain": _SMALL,
    "CreditCard": _SMALL,
    "Watch": _SMALL,
    "CellPhone": _SMALL,
    "Newspaper": (*_SMALL, "GarbageCan"),
    "Book": _SMALL,
    "Laptop": (*_DESK, "ArmChair", "Bed", "Ottoman", "Sofa", "TVStand"),
    "Pillow": ("ArmChair", "Bed", "Ottoman", "Sofa"),
    "Statue": (*_DESK, "Cabinet", "Shelf", "TVStand"),
    "Vase": (*_DESK, "Cabinet", "Shelf", "TVStand"),
    "TissueBox": (*_DESK, "Cabinet", "CounterTop", "GarbageCan", "Shelf", "TVStand", "Toilet"),
    "Box": (*_DESK, "ArmChair", "Bed", "Ottoman", "Shelf", "Sofa", "TVStand"),
    "AlarmClock": ("Desk", "Dresser", "Shelf", "SideTable"),
    "CD": ("Desk", "Drawer", "Dresser", "GarbageCan", "Safe", "Shelf", "SideTable"),
    "Pen": (*_DESK, "Drawer", "GarbageCan", "Shelf"),
    "Pencil": (*_DESK, "Drawer", "GarbageCan", "Shelf"),
    "BaseballBat": ("ArmChair", "Bed", "Desk", "Dresser"),
    "TennisRacket": ("ArmChair", "Bed", "Desk", "Dresser"),
    "BasketBall": ("ArmChair", "Bed", "Desk", "Dresser"),
    "TeddyBear": ("ArmChair", "Bed", "Desk", "Dresser", "SideTable"),
    # Bathroom.
    "Cloth": (*_BATH, "BathtubBasin", "Dresser", "LaundryHamper", "SinkBasin"),
    "SoapBar": (*_BATH, "BathtubBasin", "SinkBasin"),
    "ToiletPaper": (*_BATH, "ToiletPaperHanger"),
    "SprayBottle": _BATH,
    "Candle": (*_BATH, "BathtubBasin"),
    "Towel": ("Cabinet", "CounterTop", "TowelHolder"),
    "HandTowel": ("Cabinet", "CounterTop", "HandTowelHolder"),
    "ScrubBrush": ("Cabinet", "CounterTop", "Shelf", "Toilet"),
}

#: Objects that can appear in each room.
ROOM_OBJECTS: dict[str, tuple[str, ...]] = {
    "Kitchen": (
        "Apple", "Bread", "Bowl", "ButterKnife", "Cup", "DishSponge", "Egg", "Fork", "Kettle",
        "Knife", "Ladle", "Lettuce", "Mug", "Pan", "PaperTowelRoll", "PepperShaker", "Plate",
        "Pot", "Potato", "SaltShaker", "SoapBottle", "Spatula", "Spoon", "Tomato", "WineBottle",
    ),
    "LivingRoom": (
        "Book", "Bowl", "Box", "CellPhone", "CreditCard", "KeyChain", "Laptop", "Newspaper",
        "Pillow", "Plate", "RemoteControl", "Statue", "TissueBox", "Vase", "Watch",
    ),
    "Bedroom": (
        "AlarmClock", "BaseballBat", "BasketBall", "Book", "Bowl", "Box", "CD", "CellPhone",
        "Cloth", "CreditCard", "KeyChain", "Laptop", "Mug", "Pen", "Pencil", "Pillow",
        "TeddyBear", "TennisRacket", "Watch",
    ),
    "Bathroom": (
        "Candle", "Cloth", "DishSponge", "HandTowel", "ScrubBrush", "SoapBar", "SoapBottle",
        "SprayBottle", "TissueBox", "ToiletPaper", "Towel",
    ),
}  # fmt: skip

#: ALFWorld's object properties (``VAL_ACTION_OBJECTS``), restricted to the objects above.
HEATABLE = frozenset({"Apple", "Bread", "Cup", "Egg", "Mug", "Plate", "Potato", "Tomato"})
COOLABLE = frozenset({"Apple", "Bowl", "Bread", "Cup", "Egg", "Lettuce", "Mug", "Pan", "Plate",
                      "Pot", "Potato", "Tomato", "WineBottle"})  # fmt: skip
CLEANABLE = frozenset({"Apple", "Bowl", "ButterKnife", "Cloth", "Cup", "DishSponge", "Egg", "Fork",
                       "Kettle", "Knife", "Ladle", "Lettuce", "Mug", "Pan", "Plate", "Pot",
                       "Potato", "SoapBar", "Spatula", "Spoon", "Tomato"})  # fmt: skip

#: Lamps (toggleable, not pickupable) and the receptacles they stand on.
LAMPS: dict[str, tuple[str, ...]] = {
    "DeskLamp": ("Desk", "Dresser", "SideTable"),
    "FloorLamp": ("Dresser", "Shelf", "SideTable"),
}

#: Per task type: the appliance receptacle it needs (never the placement target).
_APPLIANCE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
_PROPERTY = {
    "pick_clean_then_place_in_recep": CLEANABLE,
    "pick_heat_then_place_in_recep": HEATABLE,
    "pick_cool_then_place_in_recep": COOLABLE,
}
#: Task types whose target is never the garbage can.
_NO_TRASH = ("pick_and_place_simple", "pick_clean_then_place_in_recep")
_STATE_FACT = {
    "pick_clean_then_place_in_recep": ("cleanable", "isClean"),
    "pick_heat_then_place_in_recep": ("heatable", "isHot"),
    "pick_cool_then_place_in_recep": ("coolable", "isCool"),
}


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
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # atomic: concurrent writers of the same seed write the same bytes
    logger.debug("generated ALFWorld game %s (%s, %s)", path, game.task_type, game.room)
    return path


# -- TextWorld ---------------------------------------------------------------------------------

#: The originals replaced by `set_textworld_speedups`: (owner, attribute, original).
_PATCHED: list[tuple[Any, str, Any]] = []

#: Actions that never change what the planner cares about (the expert's plan stays valid).
_NOOP_PREFIXES = ("look", "inventory", "examine", "help")


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
def _keep_argv() -> Iterator[None]:
    """Fast Downward's translator overwrites ``sys.argv``; put it back."""
    argv = list(sys.argv)
    try:
        yield
    finally:
        sys.argv = argv


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
        with _keep_argv():
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
        with _keep_argv():
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
