"""The routing-policy interface, the per-step input it sees, and the registry by name."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, ClassVar, TypeVar

from langgraph_hera.state import Decision, RouteInput, Target


class RoutingPolicy(ABC):
    """Decides, for each step, whether the edge or the cloud model runs it.

    Subclasses implement `score` (higher means the step more likely needs the cloud) and
    either set ``threshold`` or override `decide`. Policies must be cheap and side-effect free
    at construction; anything heavy is loaded lazily.
    """

    #: Registry name (set by `register_policy`).
    name: ClassVar[str] = "policy"
    threshold: float | None = 0.5
    #: Edge-first routing: the edge proposes its action before the policy decides, and the
    #: policy sees the proposal and its logprob (text-action agents).
    uses_edge_proposal: bool = False

    @abstractmethod
    def score(self, route_input: RouteInput) -> float:
        """The step's score: higher means more likely to need the cloud."""

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        """A short human-readable reason for the decision."""
        op = ">=" if target == "cloud" else "<"
        return f"score {score:.3f} {op} threshold {self.threshold}"

    def decide(self, route_input: RouteInput) -> Decision:
        """Score the step and compare with the threshold (cloud when score >= threshold)."""
        start = time.perf_counter()
        s = float(self.score(route_input))
        target: Target = "cloud" if self.threshold is not None and s >= self.threshold else "edge"
        return Decision(
            step=route_input.step,
            target=target,
            score=s,
            threshold=self.threshold,
            policy=self.name,
            reason=self.reason(route_input, s, target),
            latency_ms=(time.perf_counter() - start) * 1e3,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold!r})"


_REGISTRY: dict[str, type[RoutingPolicy]] = {}
P = TypeVar("P", bound=type[RoutingPolicy])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator registering a policy under ``name`` (kebab-case)."""

    def wrap(cls: P) -> P:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"policy name {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_policies() -> list[str]:
    """Registered policy names, sorted."""
    return sorted(_REGISTRY)


def get_policy(name: str, **kwargs: Any) -> RoutingPolicy:
    """Instantiate the policy registered as ``name``.

    Raises:
        ValueError: ``name`` is not registered (the message lists the registered ones).
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(f"unknown policy {name!r}; available: {', '.join(available_policies())}")
    return cls(**kwargs)


def parse_policy_kwargs(pairs: Sequence[str], *, what: str = "policy argument") -> dict[str, Any]:
    """Policy keyword arguments from ``key=value`` strings (ints and floats parsed as numbers).

    ``what`` names the arguments in the error message (e.g. ``"--policy-arg"``).

    Raises:
        ValueError: A pair without ``=`` (the message shows it).
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{what} must look like key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


def check_fraction(name: str, value: float) -> float:
    """Validate a probability / share in [0, 1]."""
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def calibrate_threshold(scores: Sequence[float], cloud_share: float) -> float:
    """The threshold that sends ``cloud_share`` of ``scores`` to the cloud (score >= t).

    RouteLLM calibrates its routers this way: pick the score quantile on a dev set so that the
    wanted fraction of queries lands on the strong model. Tied scores cannot be split, so the
    achievable shares are 0 and, for each distinct score s, the share of scores >= s; the one
    nearest ``cloud_share`` wins (compared exactly, as fractions), and of two equally near the
    cheaper one, with fewer cloud steps. All-equal scores thus give 0 % below a share of 0.5
    and 100 % above it.

    Args:
        scores: Dev-set scores, higher meaning "more likely needs the cloud"; finite numbers.
        cloud_share: The wanted fraction of steps sent to the cloud, in [0, 1].

    Returns:
        A finite threshold (decisions stay JSON-serialisable): midway between the lowest score
        sent to the cloud and the next lower one, the lowest score when all go to the cloud, or
        above the highest score when none does.

    Raises:
        ValueError: Empty ``scores``, a share outside [0, 1], or a score that is not a finite
            number (the message gives its index and value).

    Example:
        >>> calibrate_threshold([0.5] * 10, 0.3)  # 0 % is nearer 30 % than 100 %
        1.5
    """
    check_fraction("cloud_share", cloud_share)
    if len(scores) == 0:
        raise ValueError("cannot calibrate a threshold on an empty list of dev scores")
    values: list[float] = []
    for i, x in enumerate(scores):
        try:
            v = float(x)
        except (TypeError, ValueError):
            raise ValueError(f"scores[{i}] must be a finite number, got {x!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"scores[{i}] must be a finite number, got {x!r}")
        values.append(v)
    n = len(values)
    target = Fraction(cloud_share)
    # cuts[j] = (cloud count, lowest score sent to the cloud), by decreasing threshold.
    distinct = sorted(set(values), reverse=True)
    counts = Counter(values)
    cuts: list[tuple[int, float | None]] = [(0, None)]
    for v in distinct:
        cuts.append((cuts[-1][0] + counts[v], v))
    # min() keeps the first of equals: cuts are in increasing cloud count, so the cheaper one.
    j = min(range(len(cuts)), key=lambda i: abs(Fraction(cuts[i][0], n) - target))
    lowest_cloud = cuts[j][1]
    if lowest_cloud is None:  # none to the cloud: any t above the top score
        top = distinct[0]
        above = top + 1.0
        return above if above > top else math.nextafter(top, math.inf)
    if j == len(distinct):  # all to the cloud
        return lowest_cloud
    next_edge = distinct[j]  # the highest score left on the edge
    mid = lowest_cloud / 2.0 + next_edge / 2.0
    # Midway when representable strictly above the edge score, else the cloud score itself.
    return mid if next_edge < mid <= lowest_cloud else lowest_cloud
