"""Evaluation ground: metrics, trajectories (JSONL + Parquet), resume, crashes, `hera bench`.

The episodes are real TextWorldExpress games; the edge is the expert stand-in with heavy
epsilon noise (a cheap, imperfect actor), the cloud the noiseless expert.
"""

from __future__ import annotations

import json
import math

import pytest

from langgraph_hera.envs import ExpertChatModel, make_env
from langgraph_hera.evaluation import (
    STEP_SCHEMA,
    EpisodeRunner,
    OracleEpisode,
    Point,
    apgr,
    cpt,
    iter_steps,
    oracle_episodes,
    oracle_frontier,
    oracle_summary,
    pgr,
)
from langgraph_hera.evaluation.bench import BenchConfig, bench_points, run_bench, write_report
from langgraph_hera.policies import get_policy
from langgraph_hera.policies.langchain_router import TITLE as LANGCHAIN_ROUTER_TITLE
from tests.conftest import KeepOpen

pytest.importorskip("textworld_express")


def test_pgr_apgr_cpt_by_hand() -> None:
    assert pgr(0.6, 0.2, 1.0) == pytest.approx(0.5)
    assert math.isnan(pgr(0.5, 0.8, 0.8))  # no gap to recover
    # A policy at (share 0.5, success 0.6) with edge 0.2, cloud 1.0: PGR 0.5 at share 0.5.
    pts = [Point(0.5, 0.6)]
    # Curve (0,0) -> (0.5,0.5) -> (1,1): the diagonal, area 0.5.
    assert apgr(pts, 0.2, 1.0) == pytest.approx(0.5)
    assert cpt(pts, 0.2, 1.0, 0.5) == pytest.approx(0.5)
    assert cpt(pts, 0.2, 1.0, 0.25) == pytest.approx(0.25)
    # A better router: PGR 0.9 at share 0.2 -> area 0.2*0.45 + 0.8*0.95 = 0.85.
    good = [Point(0.2, 0.2 + 0.9 * 0.8)]
    assert apgr(good, 0.2, 1.0) == pytest.approx(0.85)
    assert cpt(good, 0.2, 1.0, 0.9) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="target PGR"):
        cpt(pts, 0.2, 1.0, 1.5)


def test_oracle_from_replayed_steps() -> None:
    rows = [
        {"seed": 1, "step": 0, "agree": True, "episode_success": True},
        {"seed": 1, "step": 1, "agree": False, "episode_success": True},
        {"seed": 2, "step": 0, "agree": False, "episode_success": False},
        {"seed": 2, "step": 1, "agree": None, "episode_success": False},  # edge not asked
        {"seed": 3, "step": 0, "agree": True, "episode_success": True},
        {"seed": 3, "step": 1, "agree": True, "episode_success": True},
    ]
    eps = oracle_episodes(rows)
    assert eps == [
        OracleEpisode(1, 2, 1, True),
        OracleEpisode(2, 2, 2, False),
        OracleEpisode(3, 2, 0, True),
    ]
    s = oracle_summary(eps)
    assert s["cloud_share"] == pytest.approx(3 / 6) and s["success"] == pytest.approx(2 / 3)
    # Cheapest cloud win first: seed 3 costs nothing, seed 1 one cloud step.
    assert oracle_frontier(eps) == [Point(0, 0), Point(0, 1 / 3), Point(1 / 6, 2 / 3)]


@pytest.fixture(scope="module")
def env():
    e = make_env("twc")
    yield e
    e.close()


def _runner(env, tmp_path, policy: str, *, also_edge: bool = False, **kw) -> EpisodeRunner:
    edge = ExpertChatModel(
        expert=env.expert_action,
        valid_actions=lambda: list(env.valid_actions),
        epsilon=0.6,
        seed=3,
        model_name="noisy-edge",
    )
    return EpisodeRunner(
        env_factory=lambda: env,
        edge=edge,
        cloud_factory=lambda e: ExpertChatModel(
            expert=e.expert_action, valid_actions=lambda: list(e.valid_actions)
        ),
        policy_factory=lambda: get_policy(policy, **kw),
        max_steps=25,
        concurrency=1,
        out_dir=tmp_path,
        cloud_is_stand_in=True,
        also_edge=also_edge,
    )


def test_record_also_edge_writes_the_schema_to_jsonl_and_parquet(env, tmp_path) -> None:
    wrapped = KeepOpen(env)
    runner = _runner(wrapped, tmp_path, "always-cloud", also_edge=True)
    results = runner.run([0, 1])
    assert all(r.success for r in results), "the noiseless expert wins twc train 0 and 1"
    rows = list(iter_steps(tmp_path / "steps.jsonl"))
    assert len(rows) == sum(r.steps for r in results)
    for r in rows:
        assert set(STEP_SCHEMA) <= set(r), set(STEP_SCHEMA) - set(r)
        assert r["target"] == "cloud" and r["cloud_action"] == r["action"]
        assert r["edge_action"] is not None, "the edge was asked at every state"
        assert r["agree"] == (r["edge_action"].lower() == r["cloud_action"].lower())
        assert r["prompt"].startswith("Task: ") and "Valid actions: " in r["prompt"]
        assert r["cloud"] == "expert stand-in"
    # The noisy edge disagrees somewhere and agrees somewhere.
    assert 0 < sum(r["agree"] for r in rows) < len(rows)
    parquet = list(iter_steps(tmp_path / "steps.parquet"))
    assert len(parquet) == len(rows)
    assert parquet[0]["valid_actions"] == rows[0]["valid_actions"]
    # Resume: finished episodes are skipped, nothing is appended.
    before = (tmp_path / "steps.jsonl").read_text()
    again = _runner(wrapped, tmp_path, "always-cloud", also_edge=True).run([0, 1])
    assert [a.steps for a in again] == [r.steps for r in results]
    assert (tmp_path / "steps.jsonl").read_text() == before


class _Crashing(KeepOpen):
    def step(self, action: str):
        if self._env.history and len(self._env.history) >= 2:
            raise RuntimeError("simulator crashed")
        return self._env.step(action)


def test_an_environment_crash_is_recorded_and_the_run_goes_on(env, tmp_path) -> None:
    runner = _runner(_Crashing(env), tmp_path, "always-cloud")
    results = runner.run([2, 3])
    assert len(results) == 2
    for r in results:
        assert not r.success and r.error and "simulator crashed" in r.error
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["error"]


def test_bench_points_and_bad_policy() -> None:
    labels = [p.label for p in bench_points(["random"], sweep=True)]
    assert labels[:2] == ["always-edge", "always-cloud"]
    assert "random-p0.25" in labels and len(labels) == 2 + 3
    with pytest.raises(ValueError, match=r"unknown policy 'nope'; available: .*always-edge"):
        bench_points(["nope"])


def _bench_config(env, tmp_path, seeds: list[int], max_steps: int) -> BenchConfig:
    """A bench on the module's game: the noisy edge and the expert cloud of `_runner`."""
    wrapped = KeepOpen(env)
    base = _runner(wrapped, tmp_path, "always-edge")
    return BenchConfig(
        suite="twc",
        seeds=seeds,
        out_dir=tmp_path / "bench",
        env_factory=lambda: wrapped,
        edge=base.edge,
        cloud_factory=base.cloud_factory,
        max_steps=max_steps,
        concurrency=1,
        cloud_is_stand_in=True,
    )


def test_bench_writes_report_csv_and_plot(env, tmp_path) -> None:
    config = _bench_config(env, tmp_path, [10, 11, 12], max_steps=20)
    points = bench_points(["random"])  # always-edge, always-cloud, random(p=0.5)
    results = run_bench(config, points)
    assert set(results) == {"always-edge", "always-cloud", "random"}
    report = write_report(config.out_dir)
    rows = {r["label"]: r for r in report["rows"]}
    assert rows["always-cloud"]["cloud_share"] == 1.0 and rows["always-edge"]["cloud_share"] == 0
    assert 0 < rows["random"]["cloud_share"] < 1
    assert report["oracle"]["episodes"] == 3
    md = (config.out_dir / "report.md").read_text()
    assert "expert stand-in" in md and "Oracle frontier" in md and "| random |" in md
    csv_lines = (config.out_dir / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3
    assert (config.out_dir / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_point_arguments() -> None:
    router = "langgraph_hera/artifacts/hera-twc.npz"
    points = bench_points([f"hera:path={router}:threshold=0.4"])
    assert points[-1].policy == "hera"
    assert points[-1].kwargs == {"path": router, "threshold": 0.4}
    assert points[-1].label == "hera-hera-twc-t0.4"
    with pytest.raises(ValueError, match=r"must look like key=value, got 'oops'"):
        bench_points(["random:oops"])


def test_bench_points_refuse_bad_arguments_before_anything_starts() -> None:
    # These used to pass here and fail as a traceback after the edge server had started and
    # the always-edge / always-cloud points had been played.
    with pytest.raises(ValueError, match=r"'random-p1.5': p must be a number in \[0, 1\], got 1.5"):
        bench_points(["random:p=1.5"])
    with pytest.raises(ValueError, match=r"'random-q2'.*q"):
        bench_points(["random:q=2"])
    with pytest.raises(ValueError, match=r"'hera-router'.*runs/x/router.npz"):
        bench_points(["hera:path=runs/x/router.npz"])


def test_bench_reports_langchain_router_as_a_task_level_baseline(env, tmp_path) -> None:
    config = _bench_config(env, tmp_path, [10, 11], max_steps=12)
    # threshold 0.2: the unfitted task-level classifier sends these twc tasks to the cloud.
    run_bench(config, bench_points(["langchain-router:threshold=0.2"]))
    report = write_report(config.out_dir)
    (row,) = [r for r in report["rows"] if r["policy"] == "langchain-router"]
    assert row["episodes"] == 2 and row["cloud_share"] == 1.0
    title = f"{LANGCHAIN_ROUTER_TITLE} (langchain-router-t0.2)"
    assert row["title"] == title
    assert f"| {title} |" in (config.out_dir / "report.md").read_text()
    # Task-level: every step of an episode ran where its first step ran.
    targets: dict[int, set[str]] = {}
    for step in iter_steps(config.out_dir / "langchain-router-t0.2" / "steps.jsonl"):
        targets.setdefault(step["seed"], set()).add(step["target"])
    assert targets == {10: {"cloud"}, 11: {"cloud"}}
