"""Adaptation helpers that need no model: batching, settings, CPU detection."""

from __future__ import annotations

import random

import pytest

from langgraph_hera.training.lora import AdaptConfig, _length_bucketed, cpu_has_bf16


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
