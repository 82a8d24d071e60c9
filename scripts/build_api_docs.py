"""Build the API reference (pdoc) from the docstrings; any pdoc warning fails the build.

.venv/bin/python scripts/build_api_docs.py [--out site/api]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

#: The documented modules: the public API and the modules a user reaches into.
MODULES = [
    "langgraph_hera",
    "langgraph_hera.policies",
    "langgraph_hera.supervision",
    "langgraph_hera.models",
    "langgraph_hera.models.retry",
    "langgraph_hera.accounting",
    "langgraph_hera.envs",
    "langgraph_hera.evaluation",
    "langgraph_hera.routing",
    "langgraph_hera.tracing",
    "langgraph_hera.trace_recorder",
    "langgraph_hera.secrets",
    "langgraph_hera.adapt",
]


def build(out: Path) -> list[Path]:
    """Render every module into ``out``; raises on any pdoc warning."""
    import pdoc

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdoc.pdoc(*MODULES, output_directory=out)
    return sorted(out.rglob("*.html"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="site/api")
    args = ap.parse_args()
    pages = build(Path(args.out))
    print(f"{len(pages)} pages in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
