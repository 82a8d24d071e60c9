"""Run routed text-action episodes concurrently, resumably, one JSONL line per step."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS, CostLedger
from langgraph_hera.accounting.pricing import Pricing
from langgraph_hera.envs.base import TextEnv
from langgraph_hera.evaluation._checkpointer import is_postgres_url, open_async_checkpointer
from langgraph_hera.evaluation.trajectory import write_parquet
from langgraph_hera.policies.base import RoutingPolicy
from langgraph_hera.routing.decoding import EdgeDecoding, check_decoding
from langgraph_hera.routing.graph import create_text_agent
from langgraph_hera.routing.nodes import PromptLayout
from langgraph_hera.secrets import error_text, get_logger
from langgraph_hera.state import HeraContext

logger = get_logger(__name__)


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
    #: What the cloud was, when not the named cloud model itself: "expert stand-in (...)" or
    #: "local LLM stand-in for a cloud model (...)"; empty in runs recorded before it existed.
    cloud_label: str = ""
    # Supervised runs (PEVR / EVA); zero for routed runs.
    verifications: int = 0
    interventions: int = 0
    verifier_fp: int = 0
    verifier_fn: int = 0
    verifier_judged: int = 0
    max_context_tokens: int = 0

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
        "interventions_per_episode": sum(r.interventions for r in results) / n if n else 0.0,
        "verifications": sum(r.verifications for r in results),
        "verifier_fp": sum(r.verifier_fp for r in results),
        "verifier_fn": sum(r.verifier_fn for r in results),
        "verifier_judged": sum(r.verifier_judged for r in results),
        "max_context_tokens": max((r.max_context_tokens for r in results), default=0),
        "mean_max_context_tokens": (sum(r.max_context_tokens for r in results) / n if n else 0.0),
    }


def verifier_errors(
    supervision_log: Sequence[Mapping[str, Any]], trajectory: Sequence[Mapping[str, Any]]
) -> tuple[int, int, int]:
    """Score the supervisor's verdicts against the ground truth of progress.

    The executor made progress between two checks when the expert's distance to the goal
    went down (`langgraph_hera.routing.env_node.expert_distance`, recorded with
    ``track_progress``). A false positive is an intervention (off track) although the executor
    progressed; a false negative is "on track" although it did not.

    Returns:
        ``(false_positives, false_negatives, judged)``; verdicts whose interval has no distance
        are not judged.
    """

    def distance(k: int) -> int | None:
        if k == 0:
            return trajectory[0].get("expert_distance_before") if trajectory else None
        return trajectory[k - 1].get("expert_distance") if k - 1 < len(trajectory) else None

    fp = fn = judged = 0
    previous = 0
    for entry in supervision_log:
        step = int(entry["step"])
        if entry["on_track"] is not None:
            before, now = distance(previous), distance(step)
            if before is not None and now is not None:
                progressed = now < before
                judged += 1
                fp += (not entry["on_track"]) and progressed
                fn += bool(entry["on_track"]) and not progressed
        previous = step
    return fp, fn, judged


def done_seeds(path: Path) -> dict[int, EpisodeResult]:
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
            Not used by supervised runs.
        max_steps: Step limit per episode.
        concurrency: Episodes in flight at once.
        out_dir: Where ``steps.jsonl`` and ``episodes.jsonl`` go (resumable); ``None``: nowhere.
        cloud_is_stand_in: Label every result as played with the expert stand-in.
        pricing: Cloud prices.
        edge_params: Edge model size N.
        edge_health: Liveness probe of the edge server.
        also_edge: Ask the edge for its action at every state, whatever the policy decides
            (recorded as ``edge_action``; the replay data of Hera's imitation stage).
        supervisor_factory: Supervised runs: makes the supervisor's model for an environment
            (``None`` inside a supervised run: the monolithic executor). Set ``supervision``
            to play supervised episodes (`create_supervised_text_agent`) instead of routed ones.
        supervision: Keyword arguments of `create_supervised_text_agent` (``mode``,
            ``verify_every``, ``summarize``, ``reverse_roles``, ...); progress is always
            tracked so that verdicts can be scored.
        label: The policy column of the results (default: the policy's name, or
            ``<mode>-T<verify_every>`` for supervised runs).
        checkpoint_path: Durable runs: where every episode's graph state is checkpointed after
            each step: a SQLite file (thread ``<label>:<suite>:<seed>``), or a PostgreSQL URL
            (``postgresql://user:pass@host:5432/db``; needs the ``postgres`` extra) shared by
            many runs, so there the threads are ``<run id>:<label>:<suite>:<seed>`` with the run
            id kept in ``out_dir/run_id`` (a fresh one per run without ``out_dir``). A run killed
            at any point resumes each unfinished episode from its last completed step: the
            environment is replayed to that step and the graph continues, so no step is lost or
            counted twice (a model call in flight at the kill is paid but not in the ledger).
        edge_decoding: How the edge is held to the valid actions: ``"choice"``, ``"rank"`` or
            ``"free"`` (`langgraph_hera.routing.decoding`).
        prompt_layout: The edge's prompt layout (`langgraph_hera.routing.nodes.PromptLayout`).
        cloud_prompt_layout: The cloud's (default: ``prompt_layout``).
        cloud_label: What the cloud is, written into every episode (``cloud_label``) and, for a
            stand-in, every step (``cloud``), e.g. "local LLM stand-in for a cloud model
            (Qwen2.5-Coder-1.5B)". Default: "expert stand-in" with ``cloud_is_stand_in``.
    """

    env_factory: Callable[[], TextEnv]
    edge: Any
    cloud_factory: Callable[[TextEnv], Any]
    policy_factory: Callable[[], RoutingPolicy] | None = None
    max_steps: int = 50
    concurrency: int = 2
    out_dir: Path | None = None
    cloud_is_stand_in: bool = False
    pricing: Pricing | None = None
    edge_params: float = DEFAULT_EDGE_PARAMS
    edge_health: Callable[[], bool] | None = None
    also_edge: bool = False
    supervisor_factory: Callable[[TextEnv], Any] | None = None
    supervision: Mapping[str, Any] | None = None
    label: str | None = None
    checkpoint_path: Path | str | None = None
    edge_decoding: EdgeDecoding = "choice"
    prompt_layout: PromptLayout = "window"
    cloud_prompt_layout: PromptLayout | None = None
    cloud_label: str | None = None
    _saver: Any = field(default=None, init=False, repr=False)  # the open checkpointer
    _thread_prefix: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        if self.policy_factory is None and self.supervision is None:
            raise ValueError("EpisodeRunner needs policy_factory (routed) or supervision")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")
        check_decoding(self.edge_decoding)

    def _agent(self, env: TextEnv) -> tuple[Any, str]:
        if self.supervision is not None:
            from langgraph_hera.supervision import create_supervised_text_agent

            sup = dict(self.supervision)
            reverse = bool(sup.get("reverse_roles"))
            supervisor = self.supervisor_factory(env) if self.supervisor_factory else None
            agent = create_supervised_text_agent(
                executor=self.cloud_factory(env) if reverse else self.edge,
                supervisor=supervisor,
                pricing=self.pricing,
                edge_params=self.edge_params,
                track_progress=True,
                checkpointer=self._saver,
                **sup,
            )
            if supervisor is None:
                label = "monolithic-cloud" if reverse else "monolithic-edge"
            else:
                label = f"{sup.get('mode', 'pevr')}-T{sup.get('verify_every', 4)}"
            return agent, self.label or label
        assert self.policy_factory is not None
        policy = self.policy_factory()
        agent = create_text_agent(
            edge=self.edge,
            cloud=self.cloud_factory(env),
            policy=policy,
            pricing=self.pricing,
            edge_params=self.edge_params,
            edge_health=self.edge_health,
            propose_edge=self.also_edge,
            checkpointer=self._saver,
            edge_decoding=self.edge_decoding,
            prompt_layout=self.prompt_layout,
            cloud_prompt_layout=self.cloud_prompt_layout,
        )
        return agent, self.label or policy.name

    @staticmethod
    async def _resume_point(
        agent: Any, config: dict[str, Any], env: TextEnv, seed: int
    ) -> dict[str, Any] | None:
        """The input for this episode: ``{"seed": seed}`` for a fresh one, ``None`` to resume
        from the checkpoint (the environment is replayed to the checkpointed step first)."""
        snap = await agent.aget_state(config)
        values = snap.values or {}
        if "observation" not in values:
            return {"seed": seed}
        # Resume with no input: LangGraph re-runs only the tasks without saved writes (the
        # ``next`` of a snapshot can be empty while a completed task's Command is pending), and
        # a finished thread just returns its state.
        if not (values.get("done") or values.get("halt")):
            env.reset(seed)
            for record in values.get("trajectory") or []:
                env.step(str(record["action"]))
            logger.info(
                "resuming seed %s at step %s (%s steps replayed)",
                seed,
                values.get("step"),
                len(values.get("trajectory") or []),
            )
        return None

    async def _episode(self, env: TextEnv, seed: int) -> tuple[EpisodeResult, list[dict]]:
        t0 = time.perf_counter()
        agent, label = self._agent(env)
        ctx = HeraContext(env=env, max_steps=self.max_steps)
        config: dict[str, Any] = {"recursion_limit": 10_000}
        try:
            inp: dict[str, Any] | None = {"seed": seed}
            # Also the edge's session id (`ChatEdge.session_header`): sticky edge replicas.
            thread = f"{self._thread_prefix}{label}:{env.suite}:{seed}"
            config["configurable"] = {"thread_id": thread}
            if self._saver is not None:
                inp = await self._resume_point(agent, config, env, seed)
            out = await agent.ainvoke(inp, config, context=ctx)  # type: ignore[arg-type]
            error = out.get("halt")
        except Exception as exc:  # a crashed episode is recorded, never fatal
            logger.warning("episode seed=%s failed: %s", seed, traceback.format_exc())
            out, error = {}, error_text(exc)
        ledger = CostLedger(out.get("ledger") or [])
        log = out.get("route_log") or []
        traj = out.get("trajectory") or []
        sup_log = out.get("supervision_log") or []
        fp, fn, judged = verifier_errors(sup_log, traj)
        result = EpisodeResult(
            suite=env.suite,
            seed=seed,
            policy=label,
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
            cloud_label=self._cloud_label(),
            error=error,
            errors=list(out.get("errors") or []),
            verifications=sum(d["on_track"] is not None for d in sup_log),
            interventions=sum(d["action"] in ("replan", "advise") for d in sup_log),
            verifier_fp=fp,
            verifier_fn=fn,
            verifier_judged=judged,
            max_context_tokens=max(ledger.max_context_tokens(t) for t in ("edge", "cloud")),
        )
        task = out.get("task", "")
        steps = [
            {
                "suite": env.suite,
                "seed": seed,
                "task": task,
                "policy": label,
                **r,
                "episode_success": result.success,
            }
            for r in traj
        ]
        if self.cloud_is_stand_in or self.cloud_label:
            for s in steps:
                s["cloud"] = self.cloud_label or "expert stand-in"
        return result, steps

    def _cloud_label(self) -> str:
        if self.cloud_label:
            return self.cloud_label
        return "expert stand-in" if self.cloud_is_stand_in else ""

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
            done = done_seeds(self.out_dir / "episodes.jsonl")
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
            if self.checkpoint_path is not None:
                shared = is_postgres_url(self.checkpoint_path)  # threads of many runs
                self._thread_prefix = self._run_id() + ":" if shared else ""
                async with open_async_checkpointer(self.checkpoint_path) as saver:
                    self._saver = saver
                    try:
                        await asyncio.gather(*(one(s) for s in todo))
                    finally:
                        self._saver = None
            else:
                await asyncio.gather(*(one(s) for s in todo))
        finally:
            for env in envs:
                env.close()
            if self.out_dir is not None and todo and (self.out_dir / "steps.jsonl").exists():
                write_parquet(self.out_dir / "steps.jsonl")
        return [done[s] for s in seeds]

    def _run_id(self) -> str:
        """This run's id in a shared checkpoint store: kept in ``out_dir/run_id`` so that the same
        command resumes the same threads."""
        import uuid

        if self.out_dir is None:
            return uuid.uuid4().hex
        path = self.out_dir / "run_id"
        if not path.exists():
            path.write_text(uuid.uuid4().hex + "\n")
        return path.read_text().strip()

    def run(
        self, seeds: Sequence[int], *, on_episode: Callable[[EpisodeResult], None] | None = None
    ) -> list[EpisodeResult]:
        """Synchronous `arun`."""
        return asyncio.run(self.arun(seeds, on_episode=on_episode))
