"""Issue 21: `hera bench` and `hera supervise` describe the edge by the model actually served.

A fake OpenAI-compatible server stands in for the edge (it answers with the first valid action
of the prompt, or "look"); ``--model`` points at a directory holding Qwen2.5-0.5B-Instruct's
``config.json``, so the energy estimate, the KV-cache estimate and the labels must be Qwen's,
not SmolLM2-135M's.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
from langgraph_hera.accounting.pricing import edge_energy_joules, kv_cache_bytes
from langgraph_hera.cli import main
from langgraph_hera.evaluation.supervision_bench import EDGE_KV_DIMS
from langgraph_hera.models._weights import model_shape
from tests.fake_openai import FakeOpenAI, completion

pytest.importorskip("textworld_express")

#: Qwen2.5-0.5B-Instruct's config.json (the shape fields).
QWEN_CONFIG = {
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
}
QWEN_DIMS = "24 layers x 2 KV heads x 64"


def _first_valid(n: int, body: dict[str, Any], headers: dict[str, str]) -> Any:
    text = body["messages"][-1]["content"]
    line = next((x for x in text.splitlines() if x.startswith("Valid actions: ")), "")
    action = line.removeprefix("Valid actions: ").split(" | ")[0] or "look"
    return 200, completion(action, prompt_tokens=300), {}


@pytest.fixture
def fake_edge():
    server = FakeOpenAI(_first_valid)
    yield server
    server.stop()


@pytest.fixture
def qwen_dir(tmp_path: Path) -> Path:
    model = tmp_path / "Qwen2.5-0.5B-Instruct"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(QWEN_CONFIG))
    return model


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_bench_estimates_and_describes_the_served_edge(fake_edge, qwen_dir, tmp_path, capsys):
    shape = model_shape(qwen_dir)
    assert shape.kv_dims == (24, 2, 64) and 4.9e8 < shape.n_params < 5.0e8
    out = tmp_path / "bench"
    rc = main([
        "bench", "--policies", "random:p=0.5", "--episodes", "1", "--max-steps", "2",
        "--fold", "dev", "--edge-url", fake_edge.url, "--edge-model", "qwen2.5-0.5b-instruct",
        "--model", str(qwen_dir), "--edge-decoding", "free", "--out", str(out),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert QWEN_DIMS in captured.err and "SmolLM2" not in captured.err
    meta = json.loads((out / "bench.json").read_text())
    assert meta["edge_params"] == shape.n_params != DEFAULT_EDGE_PARAMS
    assert meta["edge_label"].startswith("qwen2.5-0.5b-instruct; ")
    assert QWEN_DIMS in meta["edge_label"]
    assert f"The edge is **{meta['edge_label']}**." in (out / "report.md").read_text()
    # The edge's energy is Qwen's: E = 2 N (n_p + n_d) / eta with N = 494M.
    (episode,) = _lines(out / "always-edge" / "episodes.jsonl")
    assert episode["edge_tokens"] > 0
    expected = edge_energy_joules(shape.n_params, episode["edge_tokens"], 0)
    assert math.isclose(episode["edge_energy_j"], expected, rel_tol=1e-9)


def test_bench_reads_the_shape_of_a_local_server_without_model(
    fake_edge, qwen_dir, tmp_path, capsys
):
    """--edge-url alone: a server on this machine (vLLM, `hera serve`) names its weights'
    directory (``root`` in ``GET /v1/models``), so the edge is still described and estimated
    by the model served; a root that is not readable here leaves the size unknown, said."""
    out = tmp_path / "bench"
    argv = [
        "bench", "--policies", "random:p=0.5", "--episodes", "1", "--max-steps", "2",
        "--fold", "dev", "--edge-url", fake_edge.url, "--edge-model", "qwen2.5-0.5b-instruct",
        "--edge-decoding", "free", "--out", str(out),
    ]  # fmt: skip
    fake_edge.models = [
        {"id": "another", "root": str(tmp_path)},
        {"id": "qwen2.5-0.5b-instruct", "root": str(qwen_dir)},
    ]
    assert main(argv) == 0
    assert QWEN_DIMS in capsys.readouterr().err
    meta = json.loads((out / "bench.json").read_text())
    assert meta["edge_params"] == model_shape(qwen_dir).n_params and QWEN_DIMS in meta["edge_label"]
    fake_edge.models = [{"id": "qwen2.5-0.5b-instruct", "root": "/on/another/machine"}]
    assert main([*argv[:-1], str(tmp_path / "bench2")]) == 0
    assert "size unknown: SmolLM2-135M's assumed" in capsys.readouterr().err
    meta = json.loads((tmp_path / "bench2" / "bench.json").read_text())
    assert meta["edge_params"] == DEFAULT_EDGE_PARAMS


def test_supervise_kv_estimate_follows_the_served_edge(fake_edge, qwen_dir, tmp_path, capsys):
    out = tmp_path / "supervise"
    rc = main([
        "supervise", "--modes", "pevr", "--intervals", "2", "--episodes", "1",
        "--max-steps", "2", "--fold", "dev", "--edge-url", fake_edge.url,
        "--edge-model", "qwen2.5-0.5b-instruct", "--model", str(qwen_dir),
        "--out", str(out),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    edge = json.loads((out / "edge.json").read_text())
    assert edge["edge_kv_dims"] == [24, 2, 64] and QWEN_DIMS in edge["edge_label"]
    report = (out / "report.md").read_text()
    assert f"KV: {edge['edge_label']}, bf16" in report and "SmolLM2" not in report
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        ctx = int(row["max_context_tokens"])
        assert float(row["kv_cache_mb"]) == pytest.approx(kv_cache_bytes(24, 2, 64, ctx) / 2**20)


def test_supervision_report_defaults_to_smollm2(tmp_path) -> None:
    """A directory played before ``edge.json`` existed (or without a model) keeps SmolLM2's."""
    from langgraph_hera.evaluation.supervision_bench import (
        SupervisionBench,
        run_supervision_bench,
        write_report,
    )

    bench = SupervisionBench(
        seeds=[],
        out_dir=tmp_path / "sup",
        env_factory=lambda: None,
        edge=None,
        cloud_factory=lambda env: None,
        supervisor_factory=lambda env: None,
    )
    run_supervision_bench(bench, [])
    edge = json.loads((tmp_path / "sup" / "edge.json").read_text())
    assert edge == {"edge_label": "SmolLM2-135M", "edge_kv_dims": list(EDGE_KV_DIMS)}
    write_report(tmp_path / "sup")
    assert "KV: SmolLM2-135M, bf16" in (tmp_path / "sup" / "report.md").read_text()


@pytest.mark.parametrize(
    ("edge", "suite", "label", "said"),
    [
        (
            "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora",
            "twc",
            "hera-hera-qwen05-twc",
            "router: hera-qwen05-twc.npz (shipped for this edge on twc)",
        ),
        (
            "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora",
            "cookingworld",
            "hera-hera-qwen05-twc",
            "router: hera-qwen05-twc.npz (shipped for this edge on twc; none on cookingworld)",
        ),
        (
            "smollm2-135m-instruct+smollm2-twx-lora",
            "coin",
            "hera-hera-coin",
            "router: hera-coin.npz (shipped for this edge on coin)",
        ),
        (
            "my-edge",
            "twc",
            "hera-hera-twc",
            "not for the served edge my-edge: train one for it with `hera train`",
        ),
    ],
)
def test_bench_and_run_play_the_router_shipped_for_the_served_edge(
    fake_edge, tmp_path, capsys, edge, suite, label, said
):
    """`hera bench`'s ``hera`` and `hera run --policy hera` play the router shipped for the
    served edge on the suite (not SmolLM2's twc router for every edge), and say which."""
    common = ["--episodes", "1", "--max-steps", "2", "--fold", "dev", "--suite", suite]
    common += ["--edge-url", fake_edge.url, "--edge-model", edge, "--edge-decoding", "free"]
    out = tmp_path / "bench"
    assert main(["bench", "--policies", "hera", *common, "--out", str(out)]) == 0
    assert said in capsys.readouterr().err
    points = json.loads((out / "bench.json").read_text())["points"]
    assert label in [p["label"] for p in points]
    assert (out / label / "episodes.jsonl").is_file()
    rc = main(["run", *common, "--no-baseline", "--out", str(tmp_path / "run")])
    assert rc == 0 and said in capsys.readouterr().err


def test_calibrate_shipped_calibrates_the_router_shipped_for_the_served_edge_and_suite(
    fake_edge, tmp_path, capsys
):
    """`hera calibrate --policy-arg path=shipped` on coin with the SmolLM2 edge plays and
    writes the coin router (not the twc one): its points, its file, the suite in the copy."""
    from langgraph_hera.policies import HeraRouter
    from langgraph_hera.policies.hera import SHIPPED_ROUTERS

    out, bench = tmp_path / "coin-cal.npz", tmp_path / "bench"
    rc = main([
        "calibrate", "--suite", "coin", "--fold", "dev", "--episodes", "1", "--max-steps", "2",
        "--edge-url", fake_edge.url, "--edge-model", "smollm2-135m-instruct+smollm2-twx-lora",
        "--edge-decoding", "free", "--policy-arg", "path=shipped", "--thresholds", "0,0.4",
        "--min-success-ratio", "1", "--out", str(out), "--bench-dir", str(bench),
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "router: hera-coin.npz (shipped for this edge on coin)" in captured.err
    assert (bench / "hera-hera-coin-t0.4" / "episodes.jsonl").is_file()
    assert not any(p.name.startswith("hera-hera-twc") for p in bench.iterdir())
    written = HeraRouter.load(out)
    shipped = HeraRouter.load(SHIPPED_ROUTERS[("smollm2-135m-instruct+smollm2-twx-lora", "coin")])
    assert written.info["calibration"]["suite"] == "coin"
    assert written.threshold == 0.0  # every step on the cloud keeps always-cloud's success
    assert written.info["n_train"] == shipped.info["n_train"]
