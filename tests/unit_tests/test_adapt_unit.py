"""Adaptation helpers that need no model: batching, settings, CPU detection."""

from __future__ import annotations

import random

import pytest

from langgraph_hera.training.lora import (
    AdaptConfig,
    _length_bucketed,
    cpu_has_bf16,
    resolve_device,
)


def test_length_buckets_cover_every_example_once_and_pad_little() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(50, 700) for _ in range(1000)]
    batches = _length_bucketed(lengths, 8, random.Random(1))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000)) and all(len(b) == 8 for b in batches)
    padded = sum(8 * max(lengths[i] for i in b) for b in batches)
    # Random batches of 8 pad ~50% on top of the real tokens here; bucketed ones a few %.
    assert padded < 1.1 * sum(lengths)
    assert _length_bucketed(lengths, 8, random.Random(1)) == batches  # deterministic per seed
    assert _length_bucketed(lengths, 8, random.Random(2)) != batches


def test_incomplete_last_batch_is_dropped_unless_it_is_all_there_is() -> None:
    batches = _length_bucketed([10] * 10, 4, random.Random(0))
    assert sorted(len(b) for b in batches) == [4, 4]
    (only,) = _length_bucketed([10] * 3, 4, random.Random(0))
    assert sorted(only) == [0, 1, 2]


def test_config_rejects_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="top_layers must be >= 1 or None, got 0"):
        AdaptConfig(top_layers=0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        AdaptConfig(batch_size=0)
    assert isinstance(cpu_has_bf16(), bool)


def test_device_is_checked_by_name() -> None:
    with pytest.raises(
        ValueError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"
    ):
        AdaptConfig(device="tpu")
    assert AdaptConfig(device="cuda:1").device == "cuda:1"
    torch = pytest.importorskip("torch")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' asked for, but torch .* sees no GPU"):
            resolve_device("cuda")


def test_adapt_names_a_base_gguf_it_cannot_convert(tmp_path, capsys) -> None:
    import json

    from langgraph_hera.cli import main

    run = tmp_path / "run"
    run.mkdir()
    row = {
        "suite": "twc",
        "seed": 1,
        "step": 0,
        "prompt": "Observation: a room\nAction:",
        "valid_actions": ["look"],
        "target": "cloud",
        "cloud_action": "look",
    }
    (run / "steps.jsonl").write_text(json.dumps(row) + "\n")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf")
    rc = main(["adapt", "--data", str(run), "--out", str(tmp_path / "a"), "--base", str(bad)])
    assert rc != 0
    assert f"could not convert {bad} to a model directory" in capsys.readouterr().err
    missing = tmp_path / "missing.gguf"
    rc = main(["adapt", "--data", str(run), "--out", str(tmp_path / "b"), "--base", str(missing)])
    assert rc != 0 and not (tmp_path / "b").exists()
    assert f"--base {missing}: no such file or directory" in capsys.readouterr().err
