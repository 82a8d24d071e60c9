"""Old keyword names that still work: each renamed keyword warns once per call and maps onto
its new name (the shape of LangGraph's ``create_react_agent(**deprecated_kwargs)``)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any


def renamed_kwargs(
    function: str,
    given: Mapping[str, Any],
    renames: Mapping[str, str],
    *,
    stacklevel: int = 3,
) -> dict[str, Any]:
    """The values of the old keyword names in ``given``, keyed by their new names.

    Args:
        function: The function's name (in the messages).
        given: The old-name keywords the caller passed (the function's ``**deprecated``).
        renames: Old name -> new name.
        stacklevel: Of the `DeprecationWarning`: 3 points at the caller of ``function``.

    Returns:
        ``{new_name: value}`` for every old name given.

    Raises:
        TypeError: A keyword that is neither current nor an old name (as Python would say).
    """
    unknown = sorted(set(given) - set(renames))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    out: dict[str, Any] = {}
    for old, value in given.items():
        new = renames[old]
        warnings.warn(
            f"{function}({old}=...) is deprecated: use {new}=... instead",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        out[new] = value
    return out
