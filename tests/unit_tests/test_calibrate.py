"""`hera calibrate` in the closed loop: the threshold choice on hand-made rows, the refusals made
before anything starts, and calibrations played on real twc dev games with the expert stand-in
as the cloud and a noisy (or random) expert as the edge, as `test_evaluation`'s bench does."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import pytest

from langgraph_hera.cli import _Models, main
from langgraph_hera.envs import ExpertChatModel, make_env
from langgraph_hera.evaluation.bench import BenchConfig
from langgraph_hera.evaluation.calibration import (
    ThresholdRow,
    calibrate_router,
    calibration_points,
    choose_threshold,
)
from langgraph_hera.policies.hera import SHIPPED_ROUTER, HeraRouter
from tests.conftest import KeepOpen


def _row(t: float, success: float, usd: float, share: float = 0.5) -> ThresholdRow:
    return ThresholdRow(threshold=t, success=success, cloud_share=share, cloud_usd=usd)


# -- choose_threshold ---------------------------------------------------------------------------

ROWS = [_row(0.2, 1.0, 0.90), _row(0.4, 0.95, 0.50), _row(0.6, 0.70, 0.20), _row(0.8, 0.5, 0.1)]


def test_the_cheapest_threshold_that_keeps_the_success_ratio_wins() -> None:
    assert choose_threshold(ROWS, cloud_success=1.0, min_success_ratio=0.95) == ROWS[1]
    assert choose_threshold(ROWS, cloud_success=1.0, min_success_ratio=1.0) == ROWS[0]
    assert choose_threshold(ROWS, cloud_success=1.0, min_success_ratio=0.7) == ROWS[2]
    # Against a weaker always-cloud the same success is worth more.
    assert choose_threshold(ROWS, cloud_success=0.5, min_success_ratio=1.0) == ROWS[3]


def test_success_exactly_at_the_ratio_qualifies_despite_float_rounding() -> None:
    # 0.9 x 20/25 is 0.7200000000000001 in floating point; 18 of 25 episodes is 0.72.
    assert 0.9 * (20 / 25) > 18 / 25
    rows = [_row(0.3, 18 / 25, 0.4), _row(0.5, 17 / 25, 0.1)]
    assert choose_threshold(rows, cloud_success=20 / 25, min_success_ratio=0.9) == rows[0]


def test_none_qualifying_returns_none() -> None:
    assert choose_threshold(ROWS, cloud_success=1.0, min_success_ratio=1.0) is not None
    rows = [r for r in ROWS if r.success < 1.0]
    assert choose_threshold(rows, cloud_success=1.0, min_success_ratio=1.0) is None
    assert choose_threshold([], cloud_success=1.0) is None


def test_ties_on_usd_go_to_higher_success_then_higher_threshold() -> None:
    # 0.1 + 0.2 and 0.3 are the same dollars (summed episode costs carry float noise).
    rows = [_row(0.3, 0.9, 0.3), _row(0.5, 1.0, 0.1 + 0.2), _row(0.7, 0.95, 0.3)]
    assert choose_threshold(rows, cloud_success=1.0, min_success_ratio=0.9).threshold == 0.5
    rows = [_row(0.3, 1.0, 0.3), _row(0.7, 1.0, 0.1 + 0.2), _row(0.5, 1.0, 0.3)]
    assert choose_threshold(rows, cloud_success=1.0, min_success_ratio=0.9).threshold == 0.7
    # A cent cheaper still beats both.
    rows.append(_row(0.2, 0.9, 0.29))
    assert choose_threshold(rows, cloud_success=1.0, min_success_ratio=0.9).threshold == 0.2


@pytest.mark.parametrize("ratio", [0.0, -0.5, 1.01, math.nan])
def test_a_ratio_outside_zero_one_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"min_success_ratio must be a number in \(0, 1\]"):
        choose_threshold(ROWS, cloud_success=1.0, min_success_ratio=ratio)


# -- checks before anything starts --------------------------------------------------------------


def test_calibration_points_check_everything_first(tmp_path: Path) -> None:
    points = calibration_points(SHIPPED_ROUTER, fold="dev", thresholds=[0.5, 0.3, 0.5])
    assert [p.label for p in points] == ["always-cloud", "hera-hera-twc-t0.3", "hera-hera-twc-t0.5"]
    with pytest.raises(ValueError, match=r"fold 'test'; allowed: train or dev: the test fold"):
        calibration_points(SHIPPED_ROUTER, fold="test", thresholds=[0.5])
    with pytest.raises(ValueError, match="no thresholds given"):
        calibration_points(SHIPPED_ROUTER, fold="dev", thresholds=[])
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\], got 1.5"):
        calibration_points(SHIPPED_ROUTER, fold="dev", thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match=r"seeds \[20000\] are not dev seeds \(10000-10999\)"):
        calibration_points(SHIPPED_ROUTER, fold="dev", thresholds=[0.5], seeds=[10000, 20000])
    with pytest.raises(FileNotFoundError, match="no Hera router file"):
        calibration_points(tmp_path / "nope.npz", fold="dev", thresholds=[0.5])


@pytest.fixture()
def no_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[object]:
    """Records any attempt to start the models; runs in an empty directory."""
    started: list[object] = []
    monkeypatch.setattr(_Models, "start", lambda self, **kw: started.append(kw))
    monkeypatch.chdir(tmp_path)
    return started


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fold", "test"], "cannot calibrate on fold 'test'; allowed: train or dev: the test"),
        (["--thresholds", ""], "no thresholds given"),
        (["--thresholds", ","], "no thresholds given"),
        (["--thresholds", "0.2,1.5"], "a threshold must be a number in [0, 1], got 1.5"),
        (["--thresholds", "-0.1"], "a threshold must be a number in [0, 1], got -0.1"),
        (["--thresholds", "0.2,x"], "--thresholds must be comma-separated numbers, got '0.2,x'"),
        (["--min-success-ratio", "0"], "min_success_ratio must be a number in (0, 1] (the"),
        (["--min-success-ratio", "1.2"], "success to keep), got 1.2"),
        (["--policy-arg", "path=missing.npz"], "no Hera router file at missing.npz"),
        (["--policy-arg", "threshold=0.3"], "--policy-arg threshold=... is not taken"),
        (["--cloud-share", "0.3"], "--cloud-share needs --traces"),
        (["--traces", "t"], "give --traces (offline, on replayed dev traces) or --thresholds"),
    ],
)
def test_cli_refuses_before_starting_anything(extra, message, no_start, tmp_path, capsys) -> None:
    argv = ["calibrate", "--episodes", "2", "--thresholds", "0.3", "--out", "cal.npz"]
    if not any(x.startswith("path=") for x in extra):
        argv += ["--router", str(SHIPPED_ROUTER)]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hera: error: ") and message in err[0], err
    assert no_start == [] and list(tmp_path.iterdir()) == []


def test_cli_needs_a_mode_and_a_router(no_start, capsys) -> None:
    assert main(["calibrate", "--router", str(SHIPPED_ROUTER)]) == 2
    assert "give --thresholds T1,T2,..." in capsys.readouterr().err
    assert main(["calibrate", "--thresholds", "0.3"]) == 2
    assert "give the router to calibrate: --router or --policy-arg path=ROUTER.npz" in (
        capsys.readouterr().err
    )
    # A test fold is refused as such even before the mode is given.
    assert main(["calibrate", "--router", str(SHIPPED_ROUTER), "--fold", "test"]) == 2
    assert "cannot calibrate on fold 'test'" in capsys.readouterr().err
    assert main(["calibrate", "--thresholds", "0.3", "--policy-arg", "path=shipped"]) == 2
    assert "give --out for the shipped router" in capsys.readouterr().err
    assert no_start == []


def test_cli_says_when_no_threshold_qualifies_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    import langgraph_hera.evaluation.calibration as calibration

    def fake(router, *, config, fold, thresholds, out, min_success_ratio, on_episode):
        rows = [_row(t, 0.5, 0.1) for t in thresholds]
        cloud = calibration.CloudBaseline(success=1.0, cloud_usd=0.4, episodes=2)
        return calibration.Calibration(
            router=Path(router), out=None, chosen=None, rows=rows, cloud=cloud,
            threshold_before=0.5, suite=config.suite, fold=fold, seeds=list(config.seeds),
            min_success_ratio=min_success_ratio, bench_dir=config.out_dir,
        )  # fmt: skip

    monkeypatch.setattr(calibration, "calibrate_router", fake)
    monkeypatch.setattr(_Models, "start", lambda self, **kw: None)
    monkeypatch.chdir(tmp_path)
    argv = ["calibrate", "--episodes", "2", "--thresholds", "0.4,0.6", "--out", "cal.npz"]
    assert main([*argv, "--router", str(SHIPPED_ROUTER)]) == 1
    captured = capsys.readouterr()
    assert "| 0.4 | 50.0% | 50.0% | 50.0% | 0.10000 | 75.0% | 0 |" in captured.out
    assert (
        "no threshold reached 95% of always-cloud's success (100.0%, so at least 95.0%) on "
        "these 2 dev episodes; nothing written" in captured.err
    )
    assert not (tmp_path / "cal.npz").exists() and "chosen" not in captured.out


# -- played on twc dev games --------------------------------------------------------------------


@pytest.fixture(scope="module")
def env():
    pytest.importorskip("textworld_express")
    e = make_env("twc")
    yield e
    e.close()


def _config(env, out_dir: Path, seeds: list[int], *, epsilon: float) -> BenchConfig:
    """A bench whose edge is the expert with ``epsilon`` noise and whose cloud is the expert."""
    wrapped = KeepOpen(env)
    edge = ExpertChatModel(
        expert=wrapped.expert_action,
        valid_actions=lambda: list(wrapped.valid_actions),
        epsilon=epsilon,
        seed=3,
        model_name="noisy-edge",
    )
    return BenchConfig(
        suite="twc",
        seeds=seeds,
        out_dir=out_dir,
        env_factory=lambda: wrapped,
        edge=edge,
        cloud_factory=lambda e: ExpertChatModel(
            expert=e.expert_action, valid_actions=lambda: list(e.valid_actions)
        ),
        max_steps=25,
        concurrency=1,
        cloud_is_stand_in=True,
    )


def test_calibrate_router_on_dev_games_writes_the_cheapest_qualifying_copy(env, tmp_path) -> None:
    router = tmp_path / "router.npz"
    router.write_bytes(SHIPPED_ROUTER.read_bytes())
    before = router.read_bytes()
    config = _config(env, tmp_path / "bench", [10000, 10001], epsilon=1.0)  # a random edge
    out = tmp_path / "router-cal.npz"
    result = calibrate_router(
        router, config=config, fold="dev", thresholds=[1.0, 0.0], out=out, min_success_ratio=0.95
    )
    by_t = {r.threshold: r for r in result.rows}
    assert list(by_t) == [0.0, 1.0]
    # Threshold 0 sends every step to the cloud, 1 none (p(needs cloud) < 1): both were played.
    assert by_t[0.0].cloud_share == 1.0 and by_t[1.0].cloud_share == 0.0
    assert by_t[1.0].cloud_usd == 0.0 and result.cloud.cloud_usd > 0
    assert result.cloud.success == 1.0 and by_t[0.0].success == 1.0
    # The random edge alone loses in 25 steps, so the free threshold does not qualify.
    assert by_t[1.0].success < 0.95
    assert result.chosen == by_t[0.0] and result.out == out
    assert router.read_bytes() == before, "the input router is never overwritten"
    written = HeraRouter.load(out)
    assert written.threshold == 0.0
    assert HeraRouter.load(router).threshold == result.threshold_before != written.threshold
    info = written.info["calibration"]
    assert info["method"] == "closed-loop dev" and info["suite"] == "twc"
    assert info["fold"] == "dev" and info["seeds"] == [10000, 10001]
    assert info["min_success_ratio"] == 0.95 and info["threshold"] == 0.0
    assert info["threshold_before"] == result.threshold_before
    assert [(r["threshold"], r["success"], r["cloud_share"]) for r in info["table"]] == [
        (0.0, 1.0, 1.0),
        (1.0, by_t[1.0].success, 0.0),
    ]
    assert info["table"][0]["cloud_usd"] == pytest.approx(by_t[0.0].cloud_usd)
    assert written.info["n_train"] == HeraRouter.load(router).info["n_train"]  # train's info kept
    # Played again on the same directory it resumes (nothing new is played); asking for the
    # random edge's threshold alone then finds none that qualifies, and writes nothing.
    lines = (config.out_dir / "hera-router-t1.0" / "episodes.jsonl").read_text()
    out2 = tmp_path / "none.npz"
    again = calibrate_router(router, config=config, fold="dev", thresholds=[1.0], out=out2)
    assert again.chosen is None and again.out is None and not out2.exists()
    assert (config.out_dir / "hera-router-t1.0" / "episodes.jsonl").read_text() == lines


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_calibrate_prints_the_table_and_writes_the_copy(tmp_path: Path, capsys) -> None:
    pytest.importorskip("textworld_express")
    # The edge is a closed port: every edge call fails over to the expert stand-in cloud, so
    # every threshold plays like always-cloud; equal cost and success go to the higher one.
    router = tmp_path / "r.npz"
    router.write_bytes(SHIPPED_ROUTER.read_bytes())
    argv = [
        "calibrate", "--suite", "twc", "--fold", "dev", "--episodes", "1", "--max-steps", "25",
        "--policy-arg", f"path={router}", "--thresholds", "0.7,0.3", "--min-success-ratio", "1",
        "--edge-url", f"http://127.0.0.1:{_closed_port()}/v1", "--edge-model", "m",
        "--edge-timeout", "2", "--bench-dir", str(tmp_path / "bench"),
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| threshold | success | % of cloud-only | cloud-step share | cloud USD | " in out
    assert "| always-cloud | 100.0% | 100.0% | 100.0% |" in out
    assert "| 0.3 | 100.0% | 100.0% | 100.0% |" in out
    assert "| 0.7 (chosen) | 100.0% | 100.0% | 100.0% |" in out
    assert "chosen: threshold 0.7" in out and f"router: {tmp_path / 'r-cal.npz'}" in out
    written = HeraRouter.load(tmp_path / "r-cal.npz")
    assert written.threshold == 0.7
    info = written.info["calibration"]
    assert info["method"] == "closed-loop dev" and info["seeds"] == [10000]
    assert [r["threshold"] for r in info["table"]] == [0.3, 0.7]
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert [p["label"] for p in bench["points"]] == ["always-cloud", "hera-r-t0.3", "hera-r-t0.7"]
