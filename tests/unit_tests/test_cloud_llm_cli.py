"""Issue 21: a local LLM standing in for a cloud model, selectable in the CLI.

A fake OpenAI-compatible server stands in for the served Qwen2.5-Coder model (it answers with
the first valid action of the prompt): the tests check the wiring, labels and prices, not play.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from langgraph_hera.accounting.pricing import LIST_PRICES
from langgraph_hera.cli import main
from langgraph_hera.cli._common import local_llm_label
from langgraph_hera.routing.nodes import EPISODE_SYSTEM_PROMPT
from tests.fake_openai import FakeOpenAI, completion

pytest.importorskip("textworld_express")

SERVED = "qwen2.5-coder-1.5b-instruct"
LABEL = "local LLM stand-in for a cloud model (Qwen2.5-Coder-1.5B)"


def _first_valid(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
    text = body["messages"][-1]["content"]
    line = next(x for x in text.splitlines() if x.startswith("Valid actions: "))
    action = line.removeprefix("Valid actions: ").split(" | ")[0]
    return 200, {**completion(action, prompt_tokens=700), "model": SERVED}, {}


@pytest.fixture
def fake_llm():
    server = FakeOpenAI(_first_valid)
    yield server
    server.stop()


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_local_llm_label() -> None:
    assert local_llm_label("qwen2.5-coder-1.5b-instruct") == LABEL
    assert local_llm_label("/x/qwen2.5-coder-0.5b-instruct.gguf").endswith("(Qwen2.5-Coder-0.5B)")
    assert local_llm_label("my-model") == "local LLM stand-in for a cloud model (my-model)"


def test_run_always_cloud_with_a_local_llm_cloud(fake_llm, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    rc = main([
        "run", "--policy", "always-cloud", "--episodes", "1", "--max-steps", "3",
        "--cloud", "local-llm", "--cloud-url", fake_llm.url, "--cloud-model", SERVED,
        "--out", str(out),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # The table names the stand-in and its stated price.
    assert LABEL in captured.out and "gpt-4o-mini list price" in captured.out
    # Every request went to the served model, with the episode layout (score, history).
    assert fake_llm.requests and all(b["model"] == SERVED for _, b, _ in fake_llm.requests)
    first = fake_llm.requests[0][1]["messages"]
    assert first[0]["content"] == EPISODE_SYSTEM_PROMPT
    assert "Score so far: 0" in first[-1]["content"]
    if len(fake_llm.requests) > 1:
        assert "Step 1: > " in fake_llm.requests[1][1]["messages"][-1]["content"]
    (episode,) = _lines(out / "episodes.jsonl")
    assert episode["cloud_label"] == LABEL and episode["cloud_is_stand_in"] is False
    steps = _lines(out / "steps.jsonl")
    assert steps and all(s["cloud"] == LABEL for s in steps)
    assert all("game_score" in s for s in steps)
    # Priced at gpt-4o-mini's list price: 700 prompt + 2 completion tokens per call.
    p = LIST_PRICES["gpt-4o-mini"]
    per_call = (700 * p.input + 2 * p.output) / 1e6
    assert math.isclose(episode["cloud_usd"], per_call * len(steps), rel_tol=1e-9)
    # No always-cloud baseline is played for an LLM cloud (it costs model time).
    assert not (tmp_path / "run-always-cloud").exists()


def test_bench_labels_the_local_llm_cloud(fake_llm, tmp_path, capsys) -> None:
    out = tmp_path / "bench"
    rc = main([
        "bench", "--policies", "random:p=0.5", "--episodes", "1", "--max-steps", "2",
        "--fold", "dev", "--cloud-url", fake_llm.url, "--cloud-model", SERVED,
        "--edge-url", fake_llm.url, "--edge-model", "edge", "--edge-decoding", "free",
        "--failure-penalty-usd", "0.5", "--out", str(out),
    ])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    report = (out / "report.md").read_text()
    assert report.splitlines()[2].startswith("**USD saved at equal success")
    assert f"The cloud is a **{LABEL}**, priced at the gpt-4o-mini list price" in report
    assert "USD per solved task (failure penalty 0.5 USD)" in report
    meta = json.loads((out / "bench.json").read_text())
    assert meta["cloud_label"] == LABEL and meta["cloud_prompt_layout"] == "episode"
    assert meta["prompt_layout"] == "window"
    rows = (out / "results.csv").read_text()
    assert "usd_per_solved" in rows.splitlines()[0] and LABEL in rows


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cloud", "local-llm"], "needs one of --cloud-url URL"),
        (["--cloud-url", "http://127.0.0.1:1/v1"], "--cloud-model is required with --cloud-url"),
        (["--cloud-model-path", "/nope.gguf"], "no such file or directory: /nope.gguf"),
        (["--cloud", "expert", "--cloud-url", "http://x/v1"], "need --cloud local-llm"),
        (
            ["--cloud-url", "http://x/v1", "--cloud-model", "m", "--cloud-price-as", "gpt-9"],
            "--cloud-price-as 'gpt-9' is not a listed price",
        ),
    ],
)
def test_bad_cloud_arguments_are_one_error_line(argv, message, capsys) -> None:
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_train_and_record_accept_the_cloud_options() -> None:
    from langgraph_hera.cli.parser import build_parser

    for cmd in ("record", "train", "supervise"):
        extra = ["--out", "x"] if cmd in ("record", "train") else []
        args = build_parser().parse_args([
            cmd, *extra, "--cloud", "local-llm", "--cloud-url", "http://h/v1",
            "--cloud-model", SERVED, "--prompt-layout", "episode",
        ])  # fmt: skip
        assert args.cloud == "local-llm" and args.prompt_layout == "episode"


def test_train_objectives_and_usd_calibration_on_real_twc_games(tmp_path, capsys) -> None:
    """--objective steps gives today's labels; usd prices them in dollars; the threshold can be
    calibrated to a USD share or a USD budget per dev episode."""
    import re

    from langgraph_hera.policies import HeraRouter
    from tests.conftest import write_wasteful_edge_recording

    write_wasteful_edge_recording(tmp_path / "train", [0, 2])
    write_wasteful_edge_recording(tmp_path / "dev", [10000])
    out = tmp_path / "x.npz"
    argv = ["train", "--data", str(tmp_path / "train"), "--out", str(out)]
    # Without prompts or costs in the recording there are no dollars to calibrate on.
    assert main([*argv, "--target-cloud-usd-share", "0.5", "--hash-dim", "32"]) == 2
    assert "record no cloud USD" in capsys.readouterr().err
    for split in ("train", "dev"):  # the prompts the cloud saw, priced by their tokens
        path = tmp_path / split / "steps.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        for r in rows:
            r["prompt"] = f"Task: {r['task']}\nObservation: {r['observation']}\nAction:"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = [
        "train", "--data", str(tmp_path / "train"), "--dev-data", str(tmp_path / "dev"),
        "--text-fields", "edge_action", "--hash-dim", "32",
    ]  # fmt: skip
    counts = {}
    for objective in ("steps", "usd"):
        out = tmp_path / f"{objective}.npz"
        assert main([*base, "--out", str(out), "--objective", objective]) == 0
        err = capsys.readouterr().err
        assert f"objective {objective}:" in err
        counts[objective] = re.search(r"train: .*fatal \d+", err).group(0)
        assert HeraRouter(out).info["objective"] == objective
    # Every wasted "look around" costs a step either way: the same labels here.
    assert counts["steps"] == counts["usd"]
    out = tmp_path / "share.npz"
    assert main([*base, "--out", str(out), "--target-cloud-usd-share", "0.5"]) == 0
    assert HeraRouter(out).info["target_cloud_usd_share"] == 0.5
    out = tmp_path / "budget.npz"
    assert main([*base, "--out", str(out), "--target-cloud-usd-per-episode", "0"]) == 0
    router = HeraRouter(out)
    assert router.info["target_cloud_usd_budget"] == 0.0 and router.info["cloud_share"] == 0.0
    rc = main([*base, "--out", str(out), "--target-cloud-share", "0.3",
               "--target-cloud-usd-share", "0.3"])  # fmt: skip
    assert rc == 2 and "give at most one of" in capsys.readouterr().err
