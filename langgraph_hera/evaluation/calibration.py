"""`hera calibrate` in the closed loop: a trained Hera router's threshold chosen on played episodes.

`hera train` sets a router's threshold open loop, from the share of recorded dev *states* it
sends to the cloud. Played episodes differ from recorded states (one routing decision changes
every state after it), so the success and cloud cost at that threshold can land far from what
the states promised. Here each candidate threshold is played on the same train or dev episodes
as always-cloud, through `langgraph_hera.evaluation.bench` (one resumable directory per point),
and the cheapest threshold that keeps a set share of always-cloud's success is written into a
copy of the router. Train on train seeds, tune on dev, report on test: the test fold is refused.

Example:
    >>> points = calibration_points("hera.npz", fold="dev", thresholds=[0.3, 0.5])  # checks only
    >>> result = calibrate_router("hera.npz", config=bench_config, fold="dev",
    ...                           thresholds=[0.3, 0.5], out="hera-cal.npz")
    >>> result.chosen.threshold if result.chosen else "none qualified"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langgraph_hera.envs import FOLD_SEEDS
from langgraph_hera.evaluation.bench import BenchConfig, BenchPoint, run_bench
from langgraph_hera.evaluation.runner import EpisodeResult, summarize
from langgraph_hera.policies.hera import SHIPPED_ROUTER, HeraRouter

#: Folds a threshold may be tuned on. ``test`` is for the final report only.
CALIBRATION_FOLDS = ("train", "dev")
#: Success within this of the required success counts as reaching it (``0.9 x 20/25`` is
#: ``0.7200000000000001`` in floating point, and 18 of 25 episodes must reach it).
_SUCCESS_TOL = 1e-9


@dataclass(frozen=True)
class ThresholdRow:
    """What the router did at one threshold on the calibration episodes.

    Args:
        threshold: Cloud when p(needs cloud) >= threshold.
        success: Share of the episodes solved.
        cloud_share: Share of the steps sent to the cloud.
        cloud_usd: Cloud USD of all the episodes together (list prices, counted tokens).
        episodes: Episodes played.
        failed_episodes: Episodes that raised (counted as unsolved).
    """

    threshold: float
    success: float
    cloud_share: float
    cloud_usd: float
    episodes: int = 0
    failed_episodes: int = 0


@dataclass(frozen=True)
class CloudBaseline:
    """Always-cloud on the same episodes: the success to keep and the USD to save."""

    success: float
    cloud_usd: float
    episodes: int = 0
    failed_episodes: int = 0


def check_success_ratio(min_success_ratio: float) -> float:
    """``min_success_ratio`` as a float in (0, 1].

    Raises:
        ValueError: Not a number in (0, 1] (the message shows the value).
    """
    number = isinstance(min_success_ratio, int | float) and not isinstance(min_success_ratio, bool)
    if not (number and 0.0 < min_success_ratio <= 1.0):
        raise ValueError(
            f"min_success_ratio must be a number in (0, 1] (the share of always-cloud's success "
            f"to keep), got {min_success_ratio!r}"
        )
    return float(min_success_ratio)


def check_thresholds(thresholds: Sequence[float]) -> list[float]:
    """The distinct thresholds, ascending.

    Raises:
        ValueError: None given, or one that is not a number in [0, 1] (the message shows it).
    """
    values = list(thresholds)
    if not values:
        raise ValueError("no thresholds given: give at least one number in [0, 1]")
    for t in values:
        ok = isinstance(t, int | float) and not isinstance(t, bool) and 0.0 <= t <= 1.0
        if not ok:
            raise ValueError(f"a threshold must be a number in [0, 1], got {t!r}")
    return sorted({float(t) for t in values})


def check_fold(fold: str) -> str:
    """``fold`` if thresholds may be tuned on it.

    Raises:
        ValueError: ``test`` (tuning on it would make the test numbers a tuned result) or an
            unknown fold; the message names the allowed ones.
    """
    if fold not in CALIBRATION_FOLDS:
        why = (
            ": the test fold is for the final report only, and a threshold tuned on it makes "
            "the test numbers a tuned result (train on train, tune on dev, report on test)"
            if fold == "test"
            else ""
        )
        raise ValueError(
            f"cannot calibrate on fold {fold!r}; allowed: {' or '.join(CALIBRATION_FOLDS)}{why}"
        )
    return fold


def choose_threshold(
    rows: Sequence[ThresholdRow], *, cloud_success: float, min_success_ratio: float = 0.95
) -> ThresholdRow | None:
    """The cheapest threshold that keeps ``min_success_ratio`` of always-cloud's success.

    A row qualifies when ``success >= min_success_ratio x cloud_success``. Among those, the one
    with the least cloud USD wins; equal USD (to 1e-9 relative) goes to the higher success, then
    to the higher threshold (fewer cloud calls for the same result).

    Args:
        rows: One row per threshold, played on the same episodes as always-cloud.
        cloud_success: Always-cloud's success on those episodes.
        min_success_ratio: Share of ``cloud_success`` to keep, in (0, 1].

    Returns:
        The chosen row, or ``None`` when no row qualifies.

    Raises:
        ValueError: ``min_success_ratio`` outside (0, 1].
    """
    need = check_success_ratio(min_success_ratio) * cloud_success
    qualified = [r for r in rows if r.success >= need - _SUCCESS_TOL]
    if not qualified:
        return None
    least = min(r.cloud_usd for r in qualified)
    cheapest = [
        r for r in qualified if math.isclose(r.cloud_usd, least, rel_tol=1e-9, abs_tol=1e-12)
    ]
    return max(cheapest, key=lambda r: (r.success, r.threshold))


def _router_path(router: str | Path) -> Path:
    return SHIPPED_ROUTER if str(router) == "shipped" else Path(router)


def _point(router: Path, threshold: float) -> BenchPoint:
    return BenchPoint("hera", {"path": str(router), "threshold": threshold})


def calibration_points(
    router: str | Path,
    *,
    fold: str,
    thresholds: Sequence[float],
    min_success_ratio: float = 0.95,
    seeds: Sequence[int] | None = None,
) -> list[BenchPoint]:
    """The bench points a calibration plays: always-cloud, then the router at each threshold.

    Checks every argument first, so a caller can refuse bad input before any server starts.

    Args:
        router: A file written by `HeraRouter.save` (or ``"shipped"``).
        fold: ``"train"`` or ``"dev"`` (`CALIBRATION_FOLDS`).
        thresholds: Candidate thresholds in [0, 1].
        min_success_ratio: Share of always-cloud's success to keep, in (0, 1].
        seeds: The seeds to play; each must belong to ``fold``.

    Raises:
        ValueError: The test fold or an unknown one, no thresholds or one outside [0, 1], a
            ratio outside (0, 1], seeds outside the fold (or none), or a file that is not a
            Hera router.
        FileNotFoundError: No router file at ``router``.
    """
    check_fold(fold)
    values = check_thresholds(thresholds)
    check_success_ratio(min_success_ratio)
    if seeds is not None:
        if not len(seeds):
            raise ValueError("no seeds to play")
        outside = [s for s in seeds if s not in FOLD_SEEDS[fold]]
        if outside:
            span = FOLD_SEEDS[fold]
            raise ValueError(
                f"seeds {outside[:5]} are not {fold} seeds ({span.start}-{span.stop - 1})"
            )
    path = _router_path(router)
    HeraRouter.load(path)  # a missing or foreign file fails here, before anything is played
    return [BenchPoint("always-cloud"), *(_point(path, t) for t in values)]


@dataclass
class Calibration:
    """The outcome of `calibrate_router`.

    Attributes:
        router: The input router file (never written unless it is ``out``).
        out: The file written, or ``None`` when no threshold qualified.
        chosen: The chosen row, or ``None``.
        rows: One row per threshold, ascending.
        cloud: Always-cloud on the same episodes.
        threshold_before: The input file's threshold.
    """

    router: Path
    out: Path | None
    chosen: ThresholdRow | None
    rows: list[ThresholdRow]
    cloud: CloudBaseline
    threshold_before: float | None
    suite: str
    fold: str
    seeds: list[int]
    min_success_ratio: float
    bench_dir: Path

    @property
    def required_success(self) -> float:
        """The success a threshold had to reach: ratio x always-cloud's success."""
        return self.min_success_ratio * self.cloud.success

    def pct_of_cloud(self, row: ThresholdRow) -> float:
        """``row``'s success as a share of always-cloud's (NaN when always-cloud solved none)."""
        return row.success / self.cloud.success if self.cloud.success else math.nan

    def usd_saved(self, row: ThresholdRow) -> float:
        """Share of always-cloud's USD that ``row`` saved (NaN when always-cloud spent none)."""
        return 1.0 - row.cloud_usd / self.cloud.cloud_usd if self.cloud.cloud_usd else math.nan

    def info(self) -> dict[str, Any]:
        """What the written router records under ``info["calibration"]``."""
        return {
            "method": f"closed-loop {self.fold}",
            "suite": self.suite,
            "fold": self.fold,
            "seeds": list(self.seeds),
            "min_success_ratio": self.min_success_ratio,
            "threshold": self.chosen.threshold if self.chosen else None,
            "threshold_before": self.threshold_before,
            "always_cloud": asdict(self.cloud),
            "table": [asdict(r) for r in self.rows],
        }


def calibrate_router(
    router: str | Path,
    *,
    config: BenchConfig,
    fold: str,
    thresholds: Sequence[float],
    out: str | Path,
    min_success_ratio: float = 0.95,
    on_episode: Callable[[BenchPoint, EpisodeResult], None] | None = None,
) -> Calibration:
    """Play always-cloud and ``router`` at each threshold on ``config.seeds`` and write a copy of
    the router with the cheapest threshold that keeps ``min_success_ratio`` of always-cloud's
    success (`choose_threshold`).

    The episodes go to ``config.out_dir``, one directory per point, resumed when run again. A
    point's directory is named after the router file's stem and the threshold: give another
    router another ``config.out_dir``.

    Args:
        router: A file written by `HeraRouter.save` (or ``"shipped"``).
        config: The bench to play (suite, seeds of ``fold``, models, bench directory).
        fold: The fold ``config.seeds`` come from: ``"train"`` or ``"dev"``, never ``"test"``.
        thresholds: Candidate thresholds in [0, 1].
        out: Where to write the calibrated copy (``router`` itself only when given here). Its
            ``info["calibration"]`` records the method, suite, fold, seeds, ratio and the
            per-threshold table (`Calibration.info`).
        min_success_ratio: Share of always-cloud's success to keep, in (0, 1].
        on_episode: Called after each episode with its point and result (progress).

    Returns:
        The table, the baseline and the choice; ``out`` is ``None`` and nothing is written when
        no threshold qualified.

    Raises:
        ValueError: As `calibration_points`.
        FileNotFoundError: No router file at ``router``.
    """
    points = calibration_points(
        router,
        fold=fold,
        thresholds=thresholds,
        min_success_ratio=min_success_ratio,
        seeds=config.seeds,
    )
    path = _router_path(router)
    results = run_bench(config, points, on_episode=on_episode)
    cloud_s = summarize(results["always-cloud"])
    cloud = CloudBaseline(
        success=cloud_s["success"],
        cloud_usd=cloud_s["cloud_usd"],
        episodes=cloud_s["episodes"],
        failed_episodes=cloud_s["failed_episodes"],
    )
    rows = []
    for point in points[1:]:
        s = summarize(results[point.label])
        rows.append(
            ThresholdRow(
                threshold=float(point.kwargs["threshold"]),
                success=s["success"],
                cloud_share=s["cloud_share"],
                cloud_usd=s["cloud_usd"],
                episodes=s["episodes"],
                failed_episodes=s["failed_episodes"],
            )
        )
    chosen = choose_threshold(
        rows, cloud_success=cloud.success, min_success_ratio=min_success_ratio
    )
    calibrated = HeraRouter.load(path)
    result = Calibration(
        router=path,
        out=None,
        chosen=chosen,
        rows=rows,
        cloud=cloud,
        threshold_before=calibrated.threshold,
        suite=config.suite,
        fold=fold,
        seeds=[int(s) for s in config.seeds],
        min_success_ratio=float(min_success_ratio),
        bench_dir=Path(config.out_dir),
    )
    if chosen is None:
        return result
    calibrated.threshold = chosen.threshold
    calibrated.info = {**calibrated.info, "calibration": result.info()}
    result.out = calibrated.save(out)  # atomic: ``out`` may be the input file itself
    return result
