"""`hera adapt` on the real packaged SmolLM2: data filtering, training, resume, merge, refusal.

Tiny settings (2 steps, batch 2, one adapted layer) keep this to well under a minute on CPU;
the shipped adapter's numbers come from `hera adapt` itself (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("peft")
pytest.importorskip("transformers")

from langgraph_hera.adapt import (  # noqa: E402
    ADAPTER_META,
    AdaptConfig,
    AdapterError,
    adapter_info,
    examples_from_steps,
    merge_adapter,
    model_identity,
    train_adapter,
)

pytestmark = pytest.mark.integration


def _steps(path, rows) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(seed: int, step: int, action: str, **kw) -> dict:
    return {
        "suite": "twc",
        "seed": seed,
        "step": step,
        "prompt": f"Task: tidy\nObservation: room {step}\nValid actions: {action} | look\nAction:",
        "valid_actions": [action, "look"],
        "target": "cloud",
        "cloud_action": action,
        "action": action,
        **kw,
    }


def test_examples_keep_train_cloud_steps_only(tmp_path) -> None:
    _steps(
        tmp_path / "run",
        [
            _row(1, 0, "open fridge"),
            _row(1, 1, "take apple"),
            _row(10001, 0, "open fridge"),  # dev seed: never trained on
            _row(2, 0, "move north", target="edge", cloud_action=None),  # no cloud action
            {**_row(3, 0, "fly"), "valid_actions": ["look"]},  # not a valid action
        ],
    )
    examples, stats = examples_from_steps([tmp_path / "run"])
    assert [(e.seed, e.action) for e in examples] == [(1, "open fridge"), (1, "take apple")]
    assert (stats.not_train, stats.no_cloud_action, stats.invalid) == (1, 1, 1)
    with pytest.raises(ValueError, match="unknown fold 'val'"):
        examples_from_steps([tmp_path / "run"], folds=["val"])
    _steps(tmp_path / "dev", [_row(10001, 0, "open fridge")])
    with pytest.raises(ValueError, match="no usable training steps"):
        examples_from_steps([tmp_path / "dev"])


@pytest.fixture(scope="module")
def base_dir():
    from langgraph_hera.models._embedded import EmbeddedModelError, embedded_model_dir

    try:
        return embedded_model_dir()
    except EmbeddedModelError as exc:
        pytest.skip(f"embedded model unavailable: {exc}")


def test_train_resume_merge_and_refuse_another_base(base_dir, tmp_path) -> None:
    _steps(tmp_path / "run", [_row(s, i, a) for s in range(3) for i, a in enumerate(["go", "x"])])
    examples, _ = examples_from_steps([tmp_path / "run"])
    config = AdaptConfig(steps=2, batch_size=2, max_len=128, top_layers=1, save_every=1, rank=4)
    out = tmp_path / "adapter"

    def interrupt(step: int, loss: float) -> None:
        assert loss == loss and loss > 0  # a real, finite cross-entropy
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_adapter(base_dir, examples, out, config, on_step=interrupt)
    assert (out / "checkpoint" / "trainer_state.pt").is_file()
    meta = train_adapter(base_dir, examples, out, config)
    assert meta["train"]["resumed_at"] == 1 and not (out / "checkpoint").exists()
    info = adapter_info(out)
    assert info["base_model"] == model_identity(base_dir) and info["steps_done"] == 2
    assert (out / "adapter_model.safetensors").stat().st_size < 1_000_000

    merged = merge_adapter(out, base_dir=base_dir, root=tmp_path / "cache")
    assert (merged / "config.json").is_file() and "+lora@" in model_identity(merged)
    assert merge_adapter(out, base_dir=base_dir, root=tmp_path / "cache") == merged  # cached

    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(AdapterError, match=r"trained on base model .*smollm2.*other-model"):
        merge_adapter(out, base_dir=other, root=tmp_path / "cache")
    (out / ADAPTER_META).unlink()
    with pytest.raises(AdapterError, match="is not a langgraph-hera adapter"):
        adapter_info(out)


def test_a_diverging_run_stops_with_the_step_and_saves_nothing(base_dir, tmp_path) -> None:
    _steps(tmp_path / "run", [_row(s, i, a) for s in range(3) for i, a in enumerate(["go", "x"])])
    examples, _ = examples_from_steps([tmp_path / "run"])
    config = AdaptConfig(steps=3, batch_size=2, max_len=128, top_layers=1, rank=4, lr=float("inf"))
    out = tmp_path / "adapter"
    with pytest.raises(ValueError, match=r"diverged: loss (nan|inf) at step 2 of 3 .*--bf16 off"):
        train_adapter(base_dir, examples, out, config)
    assert not (out / "adapter_model.safetensors").exists()


def test_cached_frozen_layers_give_the_full_models_outputs(base_dir) -> None:
    """Training runs only the adapted layers on cached outputs of the frozen ones: the result
    must be what the whole model computes (right-padded batch included)."""
    import torch
    from transformers import AutoModelForCausalLM

    from langgraph_hera.training.lora import _frozen_prefix_states, _skip_frozen_layers

    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    seqs = [list(range(100, 140)), list(range(300, 325))]
    with torch.no_grad():
        full = [model.model(input_ids=torch.tensor([s])).last_hidden_state[0] for s in seqs]
    prefix = _frozen_prefix_states(model, seqs, 20)
    _skip_frozen_layers(model, 20)
    hidden = torch.zeros(2, 40, prefix[0].shape[-1])
    hidden[0], hidden[1, :25] = prefix[0], prefix[1]
    mask = torch.tensor([[1] * 40, [1] * 25 + [0] * 15])
    with torch.no_grad():
        out = model.model(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
    assert torch.allclose(out[0], full[0], atol=1e-4)
    assert torch.allclose(out[1, :25], full[1], atol=1e-4)


def test_the_servers_merge_child_runs(base_dir, tmp_path) -> None:
    """`EdgeServer` merges in a child interpreter; that command must work as written (it once
    ran adapt.py as a file, and the package's secrets.py shadowed the standard library's)."""
    import os
    import subprocess
    import sys

    from langgraph_hera.adapt import merged_dir_for
    from langgraph_hera.models._server import merge_command

    _steps(tmp_path / "run", [_row(s, 0, "go") for s in range(2)])
    examples, _ = examples_from_steps([tmp_path / "run"])
    out = tmp_path / "adapter"
    train_adapter(base_dir, examples, out, AdaptConfig(steps=1, batch_size=2, top_layers=1, rank=2))
    env = {**os.environ, "HERA_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, *merge_command(out, base_dir)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (merged_dir_for(out, tmp_path / "cache") / "config.json").is_file()
