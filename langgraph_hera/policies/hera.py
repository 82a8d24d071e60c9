"""Hera's learned step router (stage 1: imitation of edge/cloud agreement), decision time.

Hera (Zhang et al., 2026) replays the edge model on cloud trajectories and labels each state by
whether the edge's action agrees with the cloud's; a small classifier then predicts, for every
step, p(needs cloud) = 1 - p(edge agrees). Stage 2 (cost-aware RL) relabels states and refits the
same classifier. This module is what runs at decision time; the rest lives beside it:

- `langgraph_hera.policies.features`: `FeatureSpec` and `HeraFeaturizer` (the same code at train
  and at decision time), `langgraph_hera.policies.embedders`: the text embedders.
- `HeraRouter` (registered as ``"hera"``): a class-balanced logistic regression or one-hidden-layer
  MLP in numpy (`RouterNet`; no torch at decision time), a threshold (set, or calibrated to a
  cloud share), and ``save`` / ``load`` to one ``.npz`` file.
- Training (`langgraph_hera.training`): `imitation_dataset` (the recorded steps' decision-time
  inputs and labels), `fit_router` (full-batch Adam), the IL + RL loop.

Example:
    >>> from langgraph_hera.training import fit_router, imitation_dataset, iter_steps
    >>> states, labels, seeds = imitation_dataset(iter_steps("runs/record-twc-train"))
    >>> router = fit_router(HeraRouter(spec=FeatureSpec(edge=True)), states, labels)
    >>> router.calibrate(dev_states, cloud_share=0.5).save("hera_il.npz")
    >>> router = get_policy("hera", path="hera_il.npz")
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from langgraph_hera._compat import moved
from langgraph_hera.policies.base import (
    RouteInput,
    RoutingPolicy,
    calibrate_threshold,
    register_policy,
)
from langgraph_hera.policies.embedders import (
    DEFAULT_EMBEDDING_MODEL,
    Embedder,
    HashedEmbedder,
    SentenceEmbedder,
    check_embedder_available,
    get_embedder,
)
from langgraph_hera.policies.features import (
    EDGE_FEATURES,
    EDGE_HISTORY_FEATURES,
    EDGE_MARGIN_FEATURES,
    HISTORY_FEATURES,
    SCALAR_FEATURES,
    TEXT_PARTS,
    FeatureSpec,
    HeraFeaturizer,
    normalize_text,
    undoes,
)
from langgraph_hera.secrets import get_logger
from langgraph_hera.state import Target

logger = get_logger(__name__)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "EDGE_FEATURES",
    "EDGE_HISTORY_FEATURES",
    "EDGE_MARGIN_FEATURES",
    "FORMAT_VERSION",
    "HISTORY_FEATURES",
    "SCALAR_FEATURES",
    "SHIPPED_ROUTER",
    "SHIPPED_ROUTERS",
    "TEXT_PARTS",
    "Embedder",
    "FeatureSpec",
    "HashedEmbedder",
    "HeraFeaturizer",
    "HeraRouter",
    "RouterNet",
    "SentenceEmbedder",
    "check_embedder_available",
    "get_embedder",
    "normalize_text",
    "shipped_router",
    "sigmoid",
    "undoes",
]

# Old paths of the training half of this module (now in `langgraph_hera.training`).
__getattr__ = moved(
    __name__,
    {
        "TrainConfig": "langgraph_hera.training.classifier",
        "auc_score": "langgraph_hera.training.classifier",
        "fit_router": "langgraph_hera.training.classifier",
        "imitation_dataset": "langgraph_hera.training.records",
        "route_inputs_from_records": "langgraph_hera.training.records",
        "split_episodes": "langgraph_hera.training.records",
    },
)

#: Version of the ``.npz`` layout written by `HeraRouter.save`.
FORMAT_VERSION = 1
_FORMAT = "langgraph-hera/hera-router"
_ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
#: The router shipped for the embedded edge (adapted SmolLM2) and the expert stand-in on twc;
#: ``HeraRouter("shipped")`` loads it.
SHIPPED_ROUTER = _ARTIFACTS / "hera-twc.npz"
_SMOLLM2_EDGE = "smollm2-135m-instruct+smollm2-twx-lora"
_QWEN05_EDGE = "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora"
#: Every router shipped with the package, by the served edge it was trained for (the name
#: ``hera serve`` gives the model: base + adapter) and the suite it was trained and calibrated
#: on, against the expert stand-in (docs/BENCHMARKS.md has each file's numbers).
SHIPPED_ROUTERS: dict[tuple[str, str], Path] = {
    (_SMOLLM2_EDGE, "twc"): SHIPPED_ROUTER,
    (_SMOLLM2_EDGE, "alfworld"): _ARTIFACTS / "hera-alfworld.npz",
    (_SMOLLM2_EDGE, "cookingworld"): _ARTIFACTS / "hera-cookingworld.npz",
    (_SMOLLM2_EDGE, "coin"): _ARTIFACTS / "hera-coin.npz",
    (_QWEN05_EDGE, "twc"): _ARTIFACTS / "hera-qwen05-twc.npz",
    (_QWEN05_EDGE, "alfworld"): _ARTIFACTS / "hera-qwen05-alfworld.npz",
    (_QWEN05_EDGE, "coin"): _ARTIFACTS / "hera-qwen05-coin.npz",
}


def shipped_router(edge_model: str | None = None, suite: str = "twc") -> Path:
    """The shipped router file for the served edge ``edge_model`` (any case) on ``suite``.

    The one trained for that edge on that suite (`SHIPPED_ROUTERS`); else that edge's twc
    router (the Qwen edge's on cookingworld, where it was measured); else, for an
    edge no router was shipped for (or ``None``), `SHIPPED_ROUTER` (SmolLM2's, on twc). Whom
    a file is for is in it (`HeraRouter.models`): compare before trusting a fallback.
    """
    edge = (edge_model or "").lower()  # served names follow file names: any case
    for key in ((edge, suite), (edge, "twc")):
        if key in SHIPPED_ROUTERS:
            return SHIPPED_ROUTERS[key]
    return SHIPPED_ROUTER


#: Hidden-layer activations of the MLP.
ACTIVATIONS = ("tanh", "relu")


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    """The MLP's hidden activation (``"tanh"`` or ``"relu"``)."""
    return np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, clipped against overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


@dataclass
class RouterNet:
    """Standardisation + logistic regression (two weight arrays) or a one-hidden-layer MLP
    (four: ``w1, b1, w2, b2``).

    Inputs constant on the training set get ``inv_std == 0``: they read as 0 at train and at
    decision time alike (e.g. route history in always-cloud imitation data).
    """

    mean: np.ndarray
    inv_std: np.ndarray
    weights: list[np.ndarray] = field(default_factory=list)
    activation: str = "relu"

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of p(needs cloud) for a feature matrix."""
        h = (x - self.mean) * self.inv_std
        if len(self.weights) == 2:
            return h @ self.weights[0] + self.weights[1][0]
        w1, b1, w2, b2 = self.weights
        return activate(h @ w1 + b1, self.activation) @ w2 + b2[0]


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
        >>> router = fit_router(HeraRouter(spec=FeatureSpec(edge=True), hidden=32), states, labels)
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
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not isinstance(hidden, int) or hidden < 0:
            raise ValueError(f"hidden must be an int >= 0, got {hidden!r}")
        self.hidden = hidden
        self.activation = activation
        self.models: dict[str, str | None] = {"edge": edge_model, "cloud": cloud_model}
        self.info: dict[str, Any] = {}
        self.net: RouterNet | None = None
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
        return self.net is not None

    def net_or_raise(self) -> RouterNet:
        """The fitted net.

        Raises:
            RuntimeError: The router is not fitted.
        """
        if self.net is None:
            raise RuntimeError(
                "HeraRouter is not fitted: fit it (langgraph_hera.training.fit_router) or load "
                "a saved router"
            )
        return self.net

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """p(needs cloud) for a feature matrix from `featurizer`."""
        return sigmoid(self.net_or_raise().logits(np.atleast_2d(x)))

    def predict_proba(self, states: Sequence[RouteInput]) -> np.ndarray:
        """p(needs cloud) of every state."""
        return self.predict_features(self.featurizer.transform(states))

    def score(self, route_input: RouteInput) -> float:
        net = self.net_or_raise()
        return float(sigmoid(net.logits(self.featurizer.transform([route_input])))[0])

    def reason(self, route_input: RouteInput, score: float, target: Target) -> str:
        op = ">=" if target == "cloud" else "<"
        return f"hera p(needs cloud) {score:.3f} {op} threshold {self.threshold:.3f}"

    # ------------------------------------------------------------------ training

    def fit(self, states: Sequence[RouteInput], labels: Any, *args: Any, **kw: Any) -> HeraRouter:
        """Deprecated: use `langgraph_hera.training.fit_router` (same arguments after the router).

        Kept so code written before the training package still runs; training code is not part
        of the decision-time layer, so this resolves it lazily.
        """
        warnings.warn(
            "HeraRouter.fit is deprecated; use langgraph_hera.training.fit_router(router, ...)",
            DeprecationWarning,
            stacklevel=2,
        )
        training = importlib.import_module("langgraph_hera.training.classifier")
        return training.fit_router(self, states, labels, *args, **kw)  # type: ignore[no-any-return]

    def fit_features(self, x: np.ndarray, labels: Any, *args: Any, **kw: Any) -> HeraRouter:
        """Deprecated: use `langgraph_hera.training.fit_router_features`."""
        warnings.warn(
            "HeraRouter.fit_features is deprecated; use "
            "langgraph_hera.training.fit_router_features(router, ...)",
            DeprecationWarning,
            stacklevel=2,
        )
        training = importlib.import_module("langgraph_hera.training.classifier")
        return training.fit_router_features(self, x, labels, *args, **kw)  # type: ignore[no-any-return]

    def set_net(self, net: RouterNet, info: dict[str, Any] | None = None) -> None:
        """Install fitted weights (what `langgraph_hera.training.fit_router` produces).

        Raises:
            ValueError: ``net`` does not take this router's ``featurizer.dim`` inputs.
        """
        if net.mean.shape != (self.featurizer.dim,):
            raise ValueError(
                f"net takes {net.mean.shape} inputs, the featurizer makes {self.featurizer.dim}"
            )
        self.net = net
        if info is not None:
            self.info = dict(info)

    def calibrate(self, dev_states: Sequence[RouteInput], cloud_share: float) -> HeraRouter:
        """Set the threshold so ``cloud_share`` of ``dev_states`` go to the cloud."""
        self.threshold = calibrate_threshold(self.predict_proba(dev_states).tolist(), cloud_share)
        return self

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write spec, weights, threshold and model pair to one ``.npz`` file.

        Written beside and moved into place (`os.replace`): an interrupted write never leaves
        half a router, also when ``path`` is the file the router was loaded from.

        Raises:
            RuntimeError: The router is not fitted.
        """
        net = self.net_or_raise()
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
        partial = p.with_name(f".{p.name}.partial")
        try:
            with partial.open("wb") as f:
                np.savez_compressed(f, **arrays)
            os.replace(partial, p)
        finally:
            partial.unlink(missing_ok=True)
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
            shipped = path in SHIPPED_ROUTERS.values()
            hint = " (this installation does not ship it)" if shipped else ""
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
        if activation not in ACTIVATIONS:
            raise ValueError(f"{path}: activation {activation!r} is not one of {ACTIVATIONS}")
        self.featurizer = HeraFeaturizer(spec, embedder)
        self.hidden = hidden
        self.activation = activation
        self.net = RouterNet(mean, inv_std, weights, activation)
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
