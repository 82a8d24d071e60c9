"""The `hera` CLI: bad input is one clear error line; `hera run` prints its table and JSONL.

`hera run` is exercised here with the edge at a closed loopback port (a real OpenAI client that
cannot connect): every edge step fails over to the expert stand-in, recorded, and the run still
finishes. The real-edge run is in the integration tests.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from langgraph_hera.cli import main
from tests.conftest import write_wasteful_edge_recording

pytest.importorskip("textworld_express")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--policy", "nope"], "unknown policy 'nope'"),
        (["run", "--suite", "zork"], "unknown suite 'zork'"),
        (["run", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["run", "--policy-arg", "p"], "--policy-arg must look like key=value, got 'p'"),
        (["run", "--edge-url", "http://127.0.0.1:1/v1"], "--edge-model is required"),
        (["run", "--max-steps", "0"], "--max-steps must be >= 1, got 0"),
        (["run", "--epsilon", "1.5"], "--epsilon must be in [0, 1], got 1.5"),
        (["profile", "--out", "x.npz", "--fold", "dev"], "train tasks only (--fold train)"),
        (["profile", "--out", "x.npz", "--depth", "0"], "--depth must be >= 1, got 0"),
        (["supervise", "--modes", "pver"], "mode must be one of ['pevr', 'eva'], got 'pver'"),
        (["supervise", "--intervals", "0"], "verify_every (T_v) must be an int >= 1"),
        (["supervise", "--intervals", "a,b"], "--intervals must be comma-separated integers"),
        (["supervise", "--trigger", "nope"], "unknown policy 'nope'"),
        (
            ["run", "--game-param", "numIngredients=2"],
            "unknown twc game parameter 'numIngredients'; allowed: numLocations (1-3)",
        ),
        (
            ["record", "--game-param", "numLocations=9"],
            "numLocations='9' must be an integer in 1-3",
        ),
        (["bench", "--game-param", "numLocations"], "--game-param must look like KEY=VALUE"),
        (["supervise", "--suite", "alfworld", "--game-param", "a=1"], "takes no game parameters"),
        (["profile", "--out", "x.npz", "--game-param", "x=1"], "unknown twc game parameter 'x'"),
        (
            ["train", "--data", "d", "--out", "r.npz", "--game-param", "x=1"],
            "allowed: numLocations",
        ),
    ],
)
def test_bad_input_is_one_error_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hera: error: ") and message in err[0]


def test_run_with_dead_edge_fails_over_and_prints_the_table(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "run"
    argv = [
        "run", "--episodes", "2", "--policy", "always-edge", "--max-steps", "25",
        "--edge-url", f"http://127.0.0.1:{_closed_port()}/v1", "--edge-model", "m",
        "--edge-timeout", "2", "--out", str(out_dir),
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "expert stand-in" in captured.out and "cloud-step share" in captured.out
    episodes = [json.loads(line) for line in (out_dir / "episodes.jsonl").read_text().splitlines()]
    steps = [json.loads(line) for line in (out_dir / "steps.jsonl").read_text().splitlines()]
    assert len(episodes) == 2 and all(e["success"] for e in episodes)
    assert all(e["cloud_is_stand_in"] for e in episodes)
    # Every step went to the cloud because the edge failed, and each failure is on record.
    assert steps and all(s["target"] == "cloud" for s in steps)
    assert all(s["cloud"] == "expert stand-in" for s in steps)
    assert all(any("edge call failed" in m for m in e["errors"]) for e in episodes)
    # Always-cloud on the same seeds (the stand-in costs no model time): what routing saved.
    baseline = tmp_path / "run-always-cloud"
    assert len((baseline / "episodes.jsonl").read_text().splitlines()) == 2
    line = next(x for x in captured.out.splitlines() if x.startswith("routing vs always-cloud"))
    assert re.search(
        r"cloud USD [\d.]+ vs [\d.]+ \(saved -?[\d.]+%\); success 100.0% vs 100.0%", line
    )
    # Running again resumes both: nothing new is played.
    assert main(argv) == 0
    assert "routing vs always-cloud" in capsys.readouterr().out
    assert len((out_dir / "episodes.jsonl").read_text().splitlines()) == 2
    assert len((baseline / "episodes.jsonl").read_text().splitlines()) == 2


def test_run_with_game_params_and_no_baseline(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "run"
    argv = [
        "run", "--episodes", "1", "--policy", "always-cloud", "--suite", "coin",
        "--game-param", "numLocations=2", "--game-param", "includeDoors=0",
        "--out", str(out_dir), "--no-baseline",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "routing vs always-cloud" not in capsys.readouterr().out
    assert not (tmp_path / "run-always-cloud").exists()
    episode = json.loads((out_dir / "episodes.jsonl").read_text().splitlines()[0])
    assert episode["success"] and episode["steps"] <= 6  # two rooms, no doors: a short game


def _replay_records(path, seeds) -> None:
    rows = []
    for seed in seeds:
        for t in range(6):
            agree = (seed + t) % 3 != 0
            rows.append({
                "suite": "twc", "seed": seed, "policy": "always-cloud", "step": t,
                "task": "tidy the house", "observation": f"room {t} of {seed}",
                "next_observation": f"room {t + 1} of {seed}", "valid_actions": ["a", "b"],
                "target": "cloud", "action": "a", "action_valid": True,
                "cloud_action": "a", "edge_action": "a" if agree else "b", "edge_valid": True,
                "edge_logprob": -0.1 if agree else -2.0, "agree": agree,
                "episode_success": True,
            })  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    (path / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_train_imitation_router_and_refuse_non_train_seeds(tmp_path, capsys) -> None:
    from langgraph_hera.policies import HeraRouter

    _replay_records(tmp_path / "train", range(12))
    _replay_records(tmp_path / "dev", range(10000, 10004))
    out = tmp_path / "router.npz"
    rc = main([
        "train", "--data", str(tmp_path / "train"), "--dev-data", str(tmp_path / "dev"),
        "--out", str(out), "--target-cloud-share", "0.3", "--labels", "agree",
    ])  # fmt: skip
    assert rc == 0 and out.is_file()
    router = HeraRouter(out)
    assert router.fitted and router.uses_edge_proposal
    assert "stage 1 (imitation): 72 states" in capsys.readouterr().err
    # The edge-proposal ablation: no edge features, no edge text -> routes before the edge.
    rc = main([
        "train", "--data", str(tmp_path / "train"), "--out", str(out), "--labels", "agree",
        "--no-edge-features", "--text-fields", "task,observation",
    ])  # fmt: skip
    assert rc == 0 and not HeraRouter(out).uses_edge_proposal
    assert not HeraRouter(out).spec.edge and not HeraRouter(out).spec.edge_history
    rc = main(["train", "--data", str(tmp_path / "dev"), "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "train seeds only" in err and "10000" in err
    assert main(["train", "--data", str(tmp_path / "train"), "--out", "x", "--rounds", "-1"]) == 2
    capsys.readouterr()
    # RL rollouts play train seeds only: another fold is refused, not silently ignored.
    rc = main(["train", "--data", str(tmp_path / "train"), "--out", "x", "--fold", "test"])
    err = capsys.readouterr().err
    assert rc == 2 and "train seeds only" in err and "--fold test" in err


def test_train_names_the_served_edge_it_was_trained_for(tmp_path) -> None:
    """A router trained against --edge-url/--edge-model is for that edge (the pairing check
    of `HeraRouter.load` needs the name); --edge-id still wins."""
    from langgraph_hera.policies import HeraRouter

    _replay_records(tmp_path / "train", range(12))
    out = tmp_path / "router.npz"
    base = ["train", "--data", str(tmp_path / "train"), "--out", str(out), "--labels", "agree"]
    served = ["--edge-url", "http://127.0.0.1:9/v1", "--edge-model", "qwen-edge+lora"]
    assert main([*base, *served]) == 0
    assert HeraRouter(out).models["edge"] == "qwen-edge+lora"
    with pytest.raises(ValueError, match="trained for edge model 'qwen-edge\\+lora'"):
        HeraRouter(out, edge_model="smollm2")
    assert main([*base, *served, "--edge-id", "my-edge"]) == 0
    assert HeraRouter(out).models["edge"] == "my-edge"
    assert main(base) == 0 and HeraRouter(out).models["edge"] is None


def test_train_with_replay_labels_on_real_twc_games(tmp_path, capsys) -> None:
    """--labels replay: edge proposals are replayed in the real game, the expert continuing."""
    pytest.importorskip("textworld_express")
    from langgraph_hera.policies import HeraRouter

    # Seeds 0 and 2 (chosen while TextWorldExpress's gold path was unseeded and seed 1's expert
    # plan changed between resets; the expert is deterministic since, see test_envs).
    write_wasteful_edge_recording(tmp_path / "train", [0, 2])
    write_wasteful_edge_recording(tmp_path / "dev", [10000])
    out = tmp_path / "router.npz"
    rc = main([
        "train", "--data", str(tmp_path / "train"), "--dev-data", str(tmp_path / "dev"),
        "--out", str(out), "--text-fields", "edge_action", "--hash-dim", "32",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    # Every "look around" costs one step (the expert then goes on as before): all costly.
    m = re.search(
        r"train: (\d+) states: edge agreed with the cloud (\d+); replayed: free 0, at a cost (\d+)",
        err,
    )
    assert m, err
    n, agreed, costly = map(int, m.groups())
    assert n == agreed + costly and costly == n // 2
    router = HeraRouter(out)
    assert router.info["labels"] == "replay" and router.spec.text_fields == ("edge_action",)
    rc = main([
        "train", "--data", str(tmp_path / "train"), "--out", str(out), "--text-fields", "nope",
    ])  # fmt: skip
    assert rc == 2 and "unknown part(s) ['nope']" in capsys.readouterr().err


def test_train_edge_margin_needs_recorded_margins(tmp_path, capsys) -> None:
    """--edge-margin on recordings without margins would train on a constant: refused before
    any replay, naming the count; some missing is said and trained on; contradictory flags and
    trace routers are refused."""
    from langgraph_hera.policies import HeraRouter

    _replay_records(tmp_path / "train", range(12))
    out = tmp_path / "router.npz"
    base = ["train", "--data", str(tmp_path / "train"), "--out", str(out), "--labels", "agree"]
    assert main([*base, "--edge-margin"]) == 2
    err = capsys.readouterr().err
    assert "none of the 72 edge proposals in --data carries an edge_margin" in err
    assert not out.exists()
    steps = tmp_path / "train" / "steps.jsonl"
    rows = [json.loads(line) for line in steps.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["edge_margin"] = None if i < 10 else 0.5 + (i % 3)
    steps.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([*base, "--edge-margin"]) == 0
    err = capsys.readouterr().err
    assert "10 of 72 edge proposals in --data carry no edge_margin" in err
    assert HeraRouter(out).spec.edge_margin and HeraRouter(out).info["suite"] == "twc"
    # Recordings without the edge's proposals at all (no --also-edge): refused too.
    rows = [{k: v for k, v in r.items() if not k.startswith("edge_")} for r in rows]
    steps.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([*base, "--edge-margin"]) == 2
    assert "none of the 0 edge proposals" in capsys.readouterr().err
    assert main([*base, "--edge-margin", "--no-edge-features"]) == 2
    assert "--edge-margin needs the edge proposal features" in capsys.readouterr().err
    traces = ["train", "--traces", str(tmp_path), "--out", str(out), "--edge-margin"]
    assert main(traces) == 2
    assert "--edge-margin is a feature of text-action routers" in capsys.readouterr().err
