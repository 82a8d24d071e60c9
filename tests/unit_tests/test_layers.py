"""The package's one-way layers (pyproject's import-linter contract) and old import paths."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "langgraph_hera"


def test_the_layers_contract_holds() -> None:
    lint = shutil.which("lint-imports") or str(Path(__file__).parents[2] / ".venv/bin/lint-imports")
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    out = subprocess.run([lint], capture_output=True, text=True, cwd=PACKAGE.parent, check=False)
    assert out.returncode == 0, out.stdout[-3000:]


def _private_imports(path: Path) -> list[str]:
    """``from langgraph_hera.x import _name`` where ``x`` is another package's module."""
    found = []
    own_package = path.parent
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("langgraph_hera"):
            target = PACKAGE.parent / Path(*node.module.split("."))  # type: ignore[union-attr]
            same_package = target.parent == own_package or target == own_package
            for alias in node.names:
                if alias.name.startswith("_") and not same_package:
                    found.append(f"{path.relative_to(PACKAGE.parent)}: {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_packages_private_name() -> None:
    found = {f for p in sorted(PACKAGE.rglob("*.py")) for f in _private_imports(p)}
    assert found == set()


def test_old_import_paths_still_work() -> None:
    from langgraph_hera.adapt import SHIPPED_ADAPTER, AdaptConfig, merge_adapter
    from langgraph_hera.evaluation.trajectory import STEP_SCHEMA, iter_steps
    from langgraph_hera.policies import TrainConfig, imitation_dataset, profile_tasks
    from langgraph_hera.policies.hera import (
        DEFAULT_EMBEDDING_MODEL,
        auc_score,
        get_embedder,
        route_inputs_from_records,
        split_episodes,
    )
    from langgraph_hera.policies.hera_rl import ExploringPolicy, relabel, replay_labels
    from langgraph_hera.policies.hera_scheduler import profile_chat_tasks
    from langgraph_hera.training import lora, records, rl

    assert TrainConfig.__module__ == "langgraph_hera.training.classifier"
    assert imitation_dataset is records.imitation_dataset
    assert ExploringPolicy is rl.ExploringPolicy and AdaptConfig is lora.AdaptConfig
    assert all(
        x is not None
        for x in (SHIPPED_ADAPTER, merge_adapter, STEP_SCHEMA, iter_steps, profile_tasks)
    )
    assert all(
        x is not None
        for x in (DEFAULT_EMBEDDING_MODEL, auc_score, get_embedder, route_inputs_from_records)
    )
    assert all(x is not None for x in (split_episodes, relabel, replay_labels, profile_chat_tasks))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import langgraph_hera.policies.hera_rl as old

        _ = old.nope


def test_policies_do_not_load_training_at_import() -> None:
    import sys

    code = (
        "import sys, langgraph_hera.policies, langgraph_hera.policies.hera_rl;"
        "print(any(m.startswith('langgraph_hera.training') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
