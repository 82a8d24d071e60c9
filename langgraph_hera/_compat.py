"""Old import paths of names that moved to a higher layer, resolved lazily.

A module keeps an old name importable without importing the higher layer at import time (which
would break the one-way layers, see docs/ARCHITECTURE.md): it lists the name in a table and
defines ``__getattr__ = moved(__name__, table)``. The first access imports the new home.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def moved(module: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that resolves ``table``'s names from their new modules.

    Args:
        module: The old module's ``__name__`` (for the error message).
        table: Old name -> dotted path of the module that now defines it.

    Returns:
        The ``__getattr__`` function (PEP 562).
    """

    def __getattr__(name: str) -> Any:
        home = table.get(name)
        if home is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(home), name)

    return __getattr__
