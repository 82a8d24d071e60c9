"""TextWorldExpress game parameters (`TWX_PARAMS`, the suites' defaults `TWX_GAMES`,
`parse_game_params`) and the fold of a seed (`fold_of`)."""

from __future__ import annotations

from collections.abc import Mapping

from langgraph_hera.envs.base import FOLD_SEEDS, Fold

#: Game parameters each suite accepts: name -> (TextWorldExpress's default, lowest, highest), as
#: checked by textworld-express 1.1.0.
TWX_PARAMS: dict[str, dict[str, tuple[int, int, int]]] = {
    "twc": {
        "numLocations": (3, 1, 3),
        "numItemsToPutAway": (4, 1, 4),
        "includeDoors": (0, 0, 1),
        "limitInventorySize": (0, 0, 1),
    },
    "cookingworld": {
        "numLocations": (11, 1, 11),
        "numIngredients": (3, 1, 5),
        "numDistractorItems": (10, 0, 10),
        "includeDoors": (1, 0, 1),
        "limitInventorySize": (1, 0, 1),
    },
    "coin": {
        "numLocations": (11, 1, 11),
        "numDistractorItems": (0, 0, 10),
        "includeDoors": (1, 0, 1),
        "limitInventorySize": (1, 0, 1),
    },
}

#: Default game parameters per suite (see the module docstring for why).
TWX_GAMES: dict[str, str] = {
    "twc": "numLocations=3,numItemsToPutAway=4,includeDoors=0,limitInventorySize=0",
    "cookingworld": (
        "numLocations=3,numIngredients=2,numDistractorItems=3,includeDoors=0,limitInventorySize=0"
    ),
    "coin": "numLocations=5,numDistractorItems=0,includeDoors=1,limitInventorySize=0",
}


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


def parse_game_params(suite: str, game_params: str | Mapping[str, int] | None = None) -> str:
    """The full TextWorldExpress parameter string for ``suite`` with ``game_params`` applied.

    Args:
        suite: ``"twc"``, ``"cookingworld"`` or ``"coin"``.
        game_params: ``"name=value,..."`` (TextWorldExpress's format) or a mapping; names not
            given keep the suite's defaults (`TWX_GAMES`). ``None`` or ``""``: the defaults.

    Returns:
        Every parameter of the game as ``"name=value,..."`` in `TWX_PARAMS` order.

    Raises:
        ValueError: Unknown suite, a malformed item, an unknown parameter name (the message lists
            the game's parameters) or a value that is not an integer in the allowed range.
    """
    if suite not in TWX_PARAMS:
        raise ValueError(f"unknown TextWorldExpress suite {suite!r}; allowed: {list(TWX_PARAMS)}")
    known = TWX_PARAMS[suite]
    allowed = ", ".join(f"{n} ({lo}-{hi})" for n, (_, lo, hi) in known.items())
    values: dict[str, int | str] = dict(_split_params(suite, TWX_GAMES[suite]))
    items = (
        list(game_params.items())
        if isinstance(game_params, Mapping)
        else _split_params(suite, game_params or "")
    )
    for name, raw in items:
        if name not in known:
            raise ValueError(f"unknown {suite} game parameter {name!r}; allowed: {allowed}")
        _, lo, hi = known[name]
        try:
            value = int(str(raw).strip())
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise ValueError(
                f"{suite} game parameter {name}={raw!r} must be an integer in {lo}-{hi}"
            )
        values[name] = value
    return ",".join(f"{name}={values[name]}" for name in known)


def _split_params(suite: str, text: str) -> list[tuple[str, str]]:
    items = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"bad {suite} game parameter {item!r}: expected name=value, "
                f"e.g. {TWX_GAMES[suite].split(',')[0]!r}"
            )
        items.append((name.strip(), value.strip()))
    return items
