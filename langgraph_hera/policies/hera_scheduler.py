"""`HeraScheduler`: the HERA/AIMS subtask scheduler (Liu et al., arXiv 2504.00434) as a policy.

In a text-action environment a *subtask* is one step (state -> action) and a subtask's
*output* is its action. The scheduler is built from estimators fitted on an offline profile:

- **profile** (`langgraph_hera.training.profile_tasks`; `profile_chat_tasks` for
  question-answering / tool requests, where a subtask is one agent turn): for each train task,
  a binary tree of edge/cloud choices down to depth D (every node: the state, the edge's
  action, the cloud's action, and the two child nodes), plus an all-edge and an all-cloud run
  of the whole task;
- **URC** (request classifier): k-NN regression from the task text to the similarity of the
  all-edge and all-cloud outcomes;
- **SP_edge / SP_cloud** (subtask predictors): retrieval of the nearest profiled states (SBERT
  embeddings, all-MiniLM-L6-v2 by default); their edge / cloud actions are the predictions, and
  their edge / cloud children the predicted next subtasks;
- **DP** (S-L distance): how many extra edge steps the profile needed until an edge action
  matched the cloud's action at that state (k-NN over neighbours);
- **CD** (convergence detector): walk the predicted edge and cloud chains in step and take the
  latest point where their actions match;
- **SD** (decomposer): prompt the edge model to split the next step into smaller steps; accepted
  only when every part passes the similarity check.

Similarity is SBERT cosine against a position-adaptive threshold
``kappa = base + slope * min(ID, cap)`` (0.6, 0.02, 5 by default). The control flow is the
paper's Algorithm 1, with its ablations as presets of ``components``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_hera._compat import moved
from langgraph_hera.policies.base import RouteInput, RoutingPolicy, register_policy
from langgraph_hera.policies.embedders import (
    DEFAULT_EMBEDDING_MODEL,
    Embedder,
    embedder_for,
    unit_rows,
)
from langgraph_hera.secrets import get_logger
from langgraph_hera.state import Decision, Target

logger = get_logger(__name__)

# Profiling moved to `langgraph_hera.training.profiling` (it replays environments and calls the
# models); the old names resolve lazily.
__getattr__ = moved(
    __name__,
    {
        "profile_tasks": "langgraph_hera.training.profiling",
        "profile_chat_tasks": "langgraph_hera.training.profiling",
    },
)

FORMAT_VERSION = 1
COMPONENTS = ("urc", "sse", "sle", "cd", "sd")
#: The paper's ablations (Figure 12) by name.
PRESETS: dict[str, tuple[str, ...]] = {
    "full": COMPONENTS,
    "no-sd": ("urc", "sse", "sle", "cd"),
    "urc+sse+sle": ("urc", "sse", "sle"),
    "urc+sse": ("urc", "sse"),
    "urc": ("urc",),
    "no-urc": ("sse", "sle", "cd", "sd"),
}


def state_text(task: str, observation: str, last_action: str = "") -> str:
    """The text a subtask is retrieved by."""
    return f"task: {task}\nlast action: {last_action}\nobservation: {' '.join(observation.split())}"


@dataclass
class ProfileNode:
    """One node of a profiled tree: a state and what each side did there."""

    seed: int
    depth: int
    state: str
    edge_action: str
    cloud_action: str
    edge_child: int = -1
    cloud_child: int = -1
    sl_distance: int = -1
    """Extra edge steps until an edge action matched this node's cloud action (-1: never)."""


@dataclass
class SchedulerProfile:
    """The offline profile: tree nodes and whole-request outcomes."""

    nodes: list[ProfileNode] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    request_similarity: list[float] = field(default_factory=list)


def request_text(task: str) -> str:
    """The text a whole request is retrieved by (URC)."""
    return f"task: {task}"


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Kappa:
    """Position-adaptive similarity threshold: ``base + slope * min(ID, cap)``."""

    base: float = 0.6
    slope: float = 0.02
    cap: int = 5

    def __call__(self, position: int) -> float:
        return self.base + self.slope * min(max(position, 0), self.cap)


@register_policy("hera-scheduler")
class HeraScheduler(RoutingPolicy):
    """The HERA/AIMS scheduler (Algorithm 1) over a saved profile.

    Args:
        path: A file written by `save` (profile, embeddings and settings).
        profile: A fresh `SchedulerProfile` (with ``embedding_model``) instead of a file.
        components: Which estimators run: a preset name (``full``, ``no-sd``, ``urc+sse+sle``,
            ``urc+sse``, ``urc``, ``no-urc``) or a ``+``-joined subset of
            ``urc, sse, sle, cd, sd``.
        kappa_base / kappa_slope / kappa_cap: The position-adaptive threshold.
        urc_threshold: Whole task on the edge when the URC predicts at least this similarity.
        k: Neighbours retrieved per estimate.
        horizon: Steps the convergence detector looks ahead.
        embedding_model: ``sentence-transformers/all-MiniLM-L6-v2`` or ``hashed-<dim>``.
        embedder: An embedder instance (tests).

    SD needs an edge model (`bind_edge`; the prebuilt text agent binds its edge).
    """

    threshold = None

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        profile: SchedulerProfile | None = None,
        components: str | Sequence[str] = "full",
        kappa_base: float = 0.6,
        kappa_slope: float = 0.02,
        kappa_cap: int = 5,
        urc_threshold: float = 0.7,
        k: int = 3,
        horizon: int = 4,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        embedder: Embedder | None = None,
    ) -> None:
        self.components = _components(components)
        self.kappa = Kappa(float(kappa_base), float(kappa_slope), int(kappa_cap))
        self.urc_threshold = float(urc_threshold)
        if k < 1 or horizon < 1:
            raise ValueError(f"k and horizon must be >= 1, got k={k!r}, horizon={horizon!r}")
        self.k, self.horizon = int(k), int(horizon)
        self._edge: Any = None
        self._commit = 0  # steps still promised to the edge by SLE / CD
        self._whole_edge: bool | None = None  # the URC's verdict for this episode
        self.timings: list[float] = []
        if path is not None:
            self._read(Path(path), embedder)
        else:
            if profile is None or not profile.nodes:
                raise ValueError("HeraScheduler needs a saved profile (path) or a profile")
            self.embedding_model = embedding_model
            self._embedder = embedder or embedder_for(embedding_model)
            self._index(profile)

    # -- construction ----------------------------------------------------------------------

    def _index(self, profile: SchedulerProfile) -> None:
        self.profile = profile
        emb = self._embedder
        nodes = profile.nodes
        self._state = unit_rows(emb.embed([n.state for n in nodes]))
        actions = self._index_nodes()
        self._actions = unit_rows(emb.embed(actions)) if actions else np.zeros((0, 1))
        self._requests = (
            unit_rows(emb.embed(profile.requests)) if profile.requests else np.zeros((0, 1))
        )

    def _index_nodes(self) -> list[str]:
        """Index the profile's actions (rows of the action embeddings) and node depths."""
        nodes = self.profile.nodes
        actions = sorted({n.edge_action for n in nodes} | {n.cloud_action for n in nodes})
        self._action_ix = {a: i for i, a in enumerate(actions)}
        self._depth = np.asarray([n.depth for n in nodes])
        return actions

    def bind_edge(self, edge: Any) -> None:
        """The edge chat model SD prompts (called by the prebuilt text agent)."""
        self._edge = edge

    # -- similarity ------------------------------------------------------------------------

    def _sim_actions(self, a: str, b: str) -> float:
        ia, ib = self._action_ix.get(a), self._action_ix.get(b)
        va = self._actions[ia] if ia is not None else unit_rows(self._embedder.embed([a]))[0]
        vb = self._actions[ib] if ib is not None else unit_rows(self._embedder.embed([b]))[0]
        return float(va @ vb)

    def _neighbours(self, vec: np.ndarray, position: int) -> list[int]:
        sims = self._state @ vec
        sims = sims - 0.01 * np.abs(self._depth - min(position, int(self._depth.max())))
        return [int(i) for i in np.argsort(-sims)[: self.k]]

    # -- estimators ------------------------------------------------------------------------

    def urc(self, task: str) -> float:
        """Predicted similarity of the all-edge and all-cloud outcomes of ``task``."""
        if not len(self._requests):
            return 0.0
        sims = self._requests @ unit_rows(self._embedder.embed([request_text(task)]))[0]
        top = np.argsort(-sims)[: self.k]
        return float(np.mean([self.profile.request_similarity[i] for i in top]))

    def sse(self, nbrs: list[int], kappa: float) -> tuple[bool, float]:
        """Do the predicted edge and cloud outputs of this subtask agree?"""
        nodes = self.profile.nodes
        sim = float(
            np.mean([self._sim_actions(nodes[i].edge_action, nodes[i].cloud_action) for i in nbrs])
        )
        return sim >= kappa, sim

    def sle(self, nbrs: list[int], kappa: float) -> int | None:
        """The predicted S-L distance d when the (d+1)-th predicted edge subtask matches the
        predicted cloud subtask; ``None`` otherwise."""
        nodes = self.profile.nodes
        found = [nodes[i].sl_distance for i in nbrs if nodes[i].sl_distance >= 0]
        if not found or 2 * len(found) < len(nbrs):
            return None
        d = int(np.median(found))
        for i in nbrs:
            cur = nodes[i]
            for _ in range(d):
                if cur.edge_child < 0:
                    break
                cur = nodes[cur.edge_child]
            if self._sim_actions(cur.edge_action, nodes[i].cloud_action) >= kappa:
                return d
        return None

    def cd(self, nbrs: list[int], position: int) -> int | None:
        """Steps to the latest predicted convergence of the edge and cloud chains, or None."""
        nodes = self.profile.nodes
        best: int | None = None
        for i in nbrs:
            e = c = nodes[i]
            for j in range(1, self.horizon + 1):
                if e.edge_child < 0 or c.cloud_child < 0:
                    break
                e, c = nodes[e.edge_child], nodes[c.cloud_child]
                if self._sim_actions(e.edge_action, c.cloud_action) >= self.kappa(position + j):
                    best = j if best is None else max(best, j)
        return best

    def sd(self, ri: RouteInput, kappa: float) -> tuple[bool, str]:
        """Decompose the next step with the edge; edge only if every part passes SSE."""
        if self._edge is None:
            return False, "no edge model bound for SD"
        from langchain_core.messages import HumanMessage

        prompt = (
            f"Task: {ri.task}\nObservation: {' '.join(ri.observation.split())[:600]}\n"
            "Split what to do next into at most 3 short steps, one per line, "
            "each a command from: " + " | ".join(ri.valid_actions[:40])
        )
        try:
            reply = self._edge.invoke([HumanMessage(prompt)])
        except Exception as exc:  # SD is an estimator: failing it just means "no"
            return False, f"SD failed: {type(exc).__name__}"
        parts = [p.strip(" -*0123456789.").strip() for p in str(reply.content).splitlines()]
        parts = [p for p in parts if p][:3]
        if not parts:
            return False, "SD produced no parts"
        vecs = unit_rows(
            self._embedder.embed([state_text(ri.task, p, ri.last_action) for p in parts])
        )
        for v in vecs:
            ok, _ = self.sse(self._neighbours(v, ri.step), kappa)
            if not ok:
                return False, f"SD: a part of {len(parts)} failed the similarity check"
        return True, f"SD: all {len(parts)} parts pass"

    # -- Algorithm 1 -------------------------------------------------------------------------

    def score(self, route_input: RouteInput) -> float:
        return 1.0 if self._route(route_input)[0] == "cloud" else 0.0

    def decide(self, route_input: RouteInput) -> Decision:
        start = time.perf_counter()
        target, score, reason = self._route(route_input)
        ms = (time.perf_counter() - start) * 1e3
        self.timings.append(ms)
        return Decision(
            step=route_input.step,
            target=target,
            score=score,
            threshold=self.kappa(route_input.step),
            policy=self.name,
            reason=reason,
            latency_ms=ms,
        )

    def _route(self, ri: RouteInput) -> tuple[Target, float, str]:
        comps, pos = self.components, ri.step
        kappa = self.kappa(pos)
        if "urc" in comps:
            if self._whole_edge is None:
                self._whole_edge = self.urc(ri.task) >= self.urc_threshold
            if self._whole_edge:
                return "edge", 0.0, "URC: the whole request is predicted edge-similar"
            if comps == ("urc",):
                return "cloud", 1.0, "URC: the request needs the cloud"
        if self._commit > 0:
            self._commit -= 1
            return "edge", 0.0, f"committed to the edge ({self._commit} more)"
        vec = unit_rows(
            self._embedder.embed([state_text(ri.task, ri.observation, ri.last_action)])
        )[0]
        nbrs = self._neighbours(vec, pos)
        sim = 0.0
        if "sse" in comps:
            ok, sim = self.sse(nbrs, kappa)
            if ok:
                return "edge", 1 - sim, f"SSE: predicted outputs agree ({sim:.2f} >= {kappa:.2f})"
        if "sle" in comps:
            d = self.sle(nbrs, kappa)
            if d is not None:
                self._commit = max(d - 1, 0)
                return "edge", 1 - sim, f"SLE: S-L distance {d}, the edge catches up"
        if "cd" in comps:
            j = self.cd(nbrs, pos)
            if j is not None:
                self._commit = j - 1
                return "edge", 1 - sim, f"CD: convergence in {j} steps"
        if "sd" in comps:
            ok, why = self.sd(ri, kappa)
            if ok:
                return "edge", 1 - sim, why
        return (
            "cloud",
            1 - sim,
            f"no estimator found the edge similar (SSE {sim:.2f} < {kappa:.2f})",
        )

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """One ``.npz``: the profile (JSON), its embeddings and the settings."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "hera-scheduler",
            "version": FORMAT_VERSION,
            "embedding_model": self.embedding_model,
            "profile": {
                "nodes": [asdict(n) for n in self.profile.nodes],
                "requests": self.profile.requests,
                "request_similarity": self.profile.request_similarity,
            },
        }
        with path.open("wb") as f:
            np.savez_compressed(
                f,
                meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                state=self._state.astype(np.float16),
                actions=self._actions.astype(np.float16),
                requests=self._requests.astype(np.float16),
            )
        return path

    def _read(self, path: Path, embedder: Embedder | None) -> None:
        if not path.exists():
            raise FileNotFoundError(f"no scheduler profile at {path}")
        with np.load(path) as data:
            try:
                meta = json.loads(bytes(data["meta"]).decode())
            except KeyError as exc:
                raise ValueError(f"{path} is not a HeraScheduler file") from exc
            if meta.get("format") != "hera-scheduler" or meta.get("version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path}: format {meta.get('format')!r} v{meta.get('version')}, expected "
                    f"'hera-scheduler' v{FORMAT_VERSION}"
                )
            arrays = {k: data[k].astype(np.float32) for k in ("state", "actions", "requests")}
        p = meta["profile"]
        self.profile = SchedulerProfile(
            nodes=[ProfileNode(**n) for n in p["nodes"]],
            requests=list(p["requests"]),
            request_similarity=[float(x) for x in p["request_similarity"]],
        )
        self.embedding_model = meta["embedding_model"]
        dim = arrays["state"].shape[1]
        self._embedder = embedder or embedder_for(self.embedding_model, dim)
        if self._embedder.dim != dim:
            raise ValueError(
                f"{path}: embeddings of size {dim}, but the embedder gives {self._embedder.dim}"
            )
        self._state, self._actions, self._requests = (
            arrays["state"],
            arrays["actions"],
            arrays["requests"],
        )
        self._index_nodes()


def _components(value: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        if value in PRESETS:
            return PRESETS[value]
        value = value.split("+")
    comps = tuple(value)
    bad = [c for c in comps if c not in COMPONENTS]
    if bad or not comps:
        raise ValueError(
            f"components {value!r}: unknown {bad}; use a preset ({', '.join(PRESETS)}) or a "
            f"'+'-joined subset of {', '.join(COMPONENTS)}"
        )
    return tuple(c for c in COMPONENTS if c in comps)
