"""Run routed text-action episodes concurrently, resumably, one JSONL line per step."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS, CostLedger
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.envs.base import TextEnv
from langgraph_hera.evaluation.trajectory import write_parquet
from langgraph_hera.policies.base import RoutingPolicy
from langgraph_hera.routing.graph import create_text_agent
from langgraph_hera.state import HeraContext

logger = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    """The outcome of one episode (one line of ``episodes.jsonl``)."""

    suite: str
    seed: int
    policy: str
    success: bool
    steps: int
    edge_steps: int
    cloud_steps: int
    invalid_actions: int
    edge_tokens: int
    cloud_tokens: int
    cloud_usd: float
    edge_energy_j: float
    router_ms: float
    wall_s: float
    cloud_is_stand_in: bool
    error: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def cloud_share(self) -> float:
        return self.cloud_steps / self.steps if self.steps else 0.0


def summarize(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Aggregate episodes: success rate, mean steps, cloud-step share, tokens, USD, energy."""
    n = len(results)
    steps = sum(r.steps for r in results)
    decisions = sum(r.edge_steps + r.cloud_steps for r in results)
    return {
        "episodes": n,
        "success": sum(r.success for r in results) / n if n else 0.0,
        "mean_steps": steps / n if n else 0.0,
        "cloud_share": sum(r.cloud_steps for r in results) / decisions if decisions else 0.0,
        "edge_tokens": sum(r.edge_tokens for r in results),
        "cloud_tokens": sum(r.cloud_tokens for r in results),
        "cloud_usd": sum(r.cloud_usd for r in results),
        "edge_energy_j": sum(r.edge_energy_j for r in results),
        "router_ms_per_step": sum(r.router_ms for r in results) / decisions if decisions else 0.0,
        "failed_episodes": sum(r.error is not None for r in results),
        "cloud_is_stand_in": any(r.cloud_is_stand_in for r in results),
    }


def _done_seeds(path: Path) -> dict[int, EpisodeResult]:
    """Episodes already in ``episodes.jsonl`` (a resumed run skips them)."""
    done: dict[int, EpisodeResult] = {}
    if not path.exists():
        return done
    for line in path.read_text().splitlines():
        try:
            data = json.loads(line)
            done[int(data["seed"])] = EpisodeResult(**data)
        except (ValueError, KeyError, TypeError):
            logger.warning("skipping a malformed line in %s", path)
    return done


@dataclass
class EpisodeRunner:
    """Plays episodes of a suite with a routed text agent.

    Args:
        env_factory: Makes a fresh environment (one per concurrent episode; reused after).
        edge: The edge chat model.
        cloud_factory: Makes the cloud model for an environment (the expert stand-in needs the
            environment; a real cloud model ignores it).
        policy_factory: Makes the routing policy (one per episode: policies may keep state).
        max_steps: Step limit per episode.
        concurrency: Episodes in flight at once.
        out_dir: Where ``steps.jsonl`` and ``episodes.jsonl`` go (resumable); ``None``: nowhere.
        cloud_is_stand_in: Label every result as played with the expert stand-in.
        pricing: Cloud prices.
        edge_params: Edge model size N.
        edge_health: Liveness probe of the edge server.
        also_edge: Ask the edge for its action at every state, whatever the policy decides
            (recorded as ``edge_action``; the replay data of Hera's imitation stage).
    """

    env_factory: Callable[[], TextEnv]
    edge: Any
    cloud_factory: Callable[[TextEnv], Any]
    policy_factory: Callable[[], RoutingPolicy]
    max_steps: int = 50
    concurrency: int = 2
    out_dir: Path | None = None
    cloud_is_stand_in: bool = False
    pricing: Pricing | None = None
    edge_params: float = DEFAULT_EDGE_PARAMS
    edge_health: Callable[[], bool] | None = None
    also_edge: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")

    async def _episode(self, env: TextEnv, seed: int) -> tuple[EpisodeResult, list[dict]]:
        policy = self.policy_factory()
        t0 = time.perf_counter()
        agent = create_text_agent(
            edge=self.edge,
            cloud=self.cloud_factory(env),
            policy=policy,
            pricing=self.pricing,
            edge_params=self.edge_params,
            edge_health=self.edge_health,
            propose_edge=self.also_edge,
        )
        ctx = HeraContext(env=env, max_steps=self.max_steps)
        try:
            out = await agent.ainvoke(
                {"seed": seed},
                {"recursion_limit": 10_000},
                context=ctx,  # type: ignore[arg-type]
            )
            error = out.get("halt")
        except Exception as exc:  # a crashed episode is recorded, never fatal
            logger.warning("episode seed=%s failed: %s", seed, traceback.format_exc())
            out, error = {}, f"{type(exc).__name__}: {exc}"
        ledger = CostLedger(out.get("ledger") or [])
        log = out.get("route_log") or []
        traj = out.get("trajectory") or []
        result = EpisodeResult(
            suite=env.suite,
            seed=seed,
            policy=policy.name,
            success=bool(out.get("success", False)),
            steps=len(traj),
            edge_steps=sum(d["target"] == "edge" for d in log),
            cloud_steps=sum(d["target"] == "cloud" for d in log),
            invalid_actions=sum(not r["action_valid"] for r in traj),
            edge_tokens=sum(ledger.tokens("edge").values()) - ledger.tokens("edge")["cached"],
            cloud_tokens=sum(ledger.tokens("cloud").values()) - ledger.tokens("cloud")["cached"],
            cloud_usd=ledger.cloud_usd,
            edge_energy_j=ledger.energy_j,
            router_ms=sum(d["latency_ms"] for d in log),
            wall_s=time.perf_counter() - t0,
            cloud_is_stand_in=self.cloud_is_stand_in,
            error=error,
            errors=list(out.get("errors") or []),
        )
        task = out.get("task", "")
        steps = [
            {
                "suite": env.suite,
                "seed": seed,
                "task": task,
                "policy": policy.name,
                **r,
                "episode_success": result.success,
            }
            for r in traj
        ]
        if self.cloud_is_stand_in:
            for s in steps:
                s["cloud"] = "expert stand-in"
        return result, steps

    async def arun(
        self,
        seeds: Sequence[int],
        *,
        on_episode: Callable[[EpisodeResult], None] | None = None,
    ) -> list[EpisodeResult]:
        """Play ``seeds`` (skipping those already in ``out_dir``); results in seed order."""
        done: dict[int, EpisodeResult] = {}
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            done = _done_seeds(self.out_dir / "episodes.jsonl")
        todo = [s for s in seeds if s not in done]
        for s in seeds:
            if s in done and on_episode:
                on_episode(done[s])
        pool: asyncio.Queue[TextEnv] = asyncio.Queue()
        envs = [self.env_factory() for _ in range(min(self.concurrency, len(todo)))]
        for env in envs:
            pool.put_nowait(env)
        write_lock = asyncio.Lock()

        async def one(seed: int) -> None:
            env = await pool.get()
            try:
                result, steps = await self._episode(env, seed)
            finally:
                pool.put_nowait(env)
            done[seed] = result
            if self.out_dir is not None:
                async with write_lock:
                    with (self.out_dir / "steps.jsonl").open("a") as f:
                        f.writelines(json.dumps(s) + "\n" for s in steps)
                    with (self.out_dir / "episodes.jsonl").open("a") as f:
                        f.write(json.dumps(asdict(result)) + "\n")
            if on_episode:
                on_episode(result)

        try:
            await asyncio.gather(*(one(s) for s in todo))
        finally:
            for env in envs:
                env.close()
            if self.out_dir is not None and todo and (self.out_dir / "steps.jsonl").exists():
                write_parquet(self.out_dir / "steps.jsonl")
        return [done[s] for s in seeds]

    def run(
        self, seeds: Sequence[int], *, on_episode: Callable[[EpisodeResult], None] | None = None
    ) -> list[EpisodeResult]:
        """Synchronous `arun`."""
        return asyncio.run(self.arun(seeds, on_episode=on_episode))
