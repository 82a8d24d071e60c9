"""The ALFWorld suite's tables: task types, rooms and their receptacles, objects and where they
may stand, object properties (heatable, coolable, cleanable), lamps."""

from __future__ import annotations

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
