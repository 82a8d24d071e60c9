"""The artifacts shipped inside the package: the Hera router and the edge's LoRA adapter."""

from __future__ import annotations

import time

import pytest

from langgraph_hera.adapt import SHIPPED_ADAPTER, adapter_info, shipped_adapter
from langgraph_hera.policies import RouteInput, get_policy
from langgraph_hera.policies.hera import SHIPPED_ROUTER, HeraRouter


def test_the_shipped_router_loads_and_decides_fast() -> None:
    assert SHIPPED_ROUTER.stat().st_size < 1_000_000
    router = HeraRouter("shipped")
    assert router.fitted and router.uses_edge_proposal
    assert router.models["edge"] == "smollm2-135m-instruct+smollm2-twx-lora"
    state = RouteInput(
        task="Your task is to pick up objects, then place them in their usual locations.",
        step=3,
        observation="You are in the kitchen. You see a fridge that is closed.",
        last_action="move south",
        valid_actions=["open fridge", "move north", "look around"],
        edge_action="open fridge",
        edge_logprob=-0.2,
        extra={"edge_action_valid": True},
    )
    router.decide(state)  # warm
    t0 = time.perf_counter()
    decisions = [router.decide(state) for _ in range(50)]
    per_step_ms = (time.perf_counter() - t0) * 1e3 / 50
    assert {d["target"] for d in decisions} <= {"edge", "cloud"}
    assert 0.0 <= decisions[0]["score"] <= 1.0 and decisions[0]["policy"] == "hera"
    assert per_step_ms < 50  # generous: the budget (5 ms p50) is measured in BENCHMARKS.md
    # The registry name resolves to the same file when asked for it.
    assert get_policy("hera", path="shipped").threshold == router.threshold


def test_the_shipped_adapter_names_its_base_model() -> None:
    assert shipped_adapter() == SHIPPED_ADAPTER
    info = adapter_info(SHIPPED_ADAPTER)
    assert info["base_model"].startswith("smollm2-135m-instruct")
    assert (SHIPPED_ADAPTER / "adapter_model.safetensors").stat().st_size < 5_000_000


def test_the_shipped_qwen_adapter_names_its_base_model_and_data() -> None:
    qwen = SHIPPED_ADAPTER.parent / "qwen05-twc-alf-lora"
    info = adapter_info(qwen)
    assert info["base_model"] == ("qwen2.5-coder-0.5b-instruct-1d9614638d18024d@1d9614638d18024d")
    assert info["steps_done"] == info["config"]["steps"] == 250
    assert info["data"]["episodes"] == 390  # 200 twc + 190 solved ALFWorld-style train episodes
    assert (qwen / "adapter_model.safetensors").stat().st_size < 10_000_000


def test_the_routers_for_the_qwen_edge_load_and_name_their_edge() -> None:
    import json

    import numpy as np

    artifacts = SHIPPED_ADAPTER.parent
    for name, threshold in (
        ("hera-qwen05-alfworld", 0.170),
        ("hera-qwen05-twc", 0.400),
        ("hera-qwen05-coin", 0.700),
    ):
        router = get_policy("hera", path=str(artifacts / f"{name}.npz"))
        assert round(router.threshold, 3) == threshold  # calibrated on dev, as measured
        meta = json.loads(str(np.load(artifacts / f"{name}.npz")["meta"]))
        assert meta["models"]["edge"] == "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora"


def test_the_twc_router_for_the_qwen_edge_was_calibrated_in_the_closed_loop_on_dev() -> None:
    """The shipped twc router is the one BENCHMARKS measured: IL + two RL rounds, its threshold
    chosen by `hera calibrate --thresholds` on 20 dev episodes (never on test seeds)."""
    router = get_policy("hera", path=str(SHIPPED_ADAPTER.parent / "hera-qwen05-twc.npz"))
    cal = router.info["calibration"]
    assert cal["method"] == "closed-loop dev" and cal["fold"] == "dev"
    assert cal["seeds"] == list(range(10000, 10020)) and cal["threshold"] == router.threshold
    assert router.info["rounds"] == 2 and router.info["objective"] == "usd"


def test_every_shipped_router_is_for_the_edge_and_suite_it_is_listed_under() -> None:
    """`SHIPPED_ROUTERS` against the files themselves: each names the served edge it is listed
    for, and a router calibrated in the closed loop was calibrated on its listed suite's dev
    seeds. The SmolLM2 ALFWorld-style router is the one BENCHMARKS measured (IL, 0.35)."""
    from langgraph_hera.policies.hera import SHIPPED_ROUTERS

    assert SHIPPED_ROUTERS[("smollm2-135m-instruct+smollm2-twx-lora", "twc")] == SHIPPED_ROUTER
    for (edge, suite), path in SHIPPED_ROUTERS.items():
        router = HeraRouter(path)
        assert router.models["edge"] == edge, path
        cal = router.info.get("calibration")
        if cal is not None:
            assert (cal["suite"], cal["fold"]) == (suite, "dev"), path
    alf = HeraRouter(SHIPPED_ROUTERS[("smollm2-135m-instruct+smollm2-twx-lora", "alfworld")])
    assert alf.threshold == 0.35 and alf.info["rounds"] == 0
    assert alf.info["calibration"]["method"] == "closed-loop dev"


def test_shipped_router_follows_the_served_edge_and_suite() -> None:
    from langgraph_hera.policies import shipped_router

    smol, qwen = (
        "smollm2-135m-instruct+smollm2-twx-lora",
        "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora",
    )
    artifacts = SHIPPED_ROUTER.parent
    assert shipped_router(smol, "twc") == SHIPPED_ROUTER == shipped_router()
    assert shipped_router(smol, "alfworld") == artifacts / "hera-alfworld.npz"
    assert shipped_router(qwen, "alfworld") == artifacts / "hera-qwen05-alfworld.npz"
    assert shipped_router(smol, "coin") == artifacts / "hera-coin.npz"
    assert shipped_router(smol.upper(), "cookingworld") == artifacts / "hera-cookingworld.npz"
    assert shipped_router(qwen, "coin") == artifacts / "hera-qwen05-coin.npz"
    # A suite no router was trained on for this edge: the edge's twc router.
    assert shipped_router(qwen, "cookingworld") == artifacts / "hera-qwen05-twc.npz"
    # An edge no router was shipped for: SmolLM2's twc router (the CLI says so).
    assert shipped_router("my-edge", "alfworld") == SHIPPED_ROUTER


def test_the_cookingworld_and_coin_routers_were_trained_and_calibrated_on_their_suite() -> None:
    """The routers BENCHMARKS measured on cookingworld and coin (SmolLM2 on both, the Qwen edge
    on coin): trained on that suite's train seeds (USD labels, IL + one RL round), the
    threshold chosen in the closed loop on its 20 dev episodes."""
    from langgraph_hera.policies.hera import SHIPPED_ROUTERS

    smol, qwen = (
        "smollm2-135m-instruct+smollm2-twx-lora",
        "qwen2.5-coder-0.5b-instruct+qwen05-twc-alf-lora",
    )
    # The chosen threshold, always-cloud's and the chosen point's cloud USD on those dev
    # episodes (BENCHMARKS).
    measured = {
        (smol, "cookingworld"): (0.4, 0.21344, 0.2029175),
        (smol, "coin"): (0.4, 0.0384325, 0.0328125),
        (qwen, "coin"): (0.7, 0.0384325, 0.013445),
    }
    for (edge, suite), (threshold, *usd_measured) in measured.items():
        router = HeraRouter(SHIPPED_ROUTERS[(edge, suite)])
        assert router.models["edge"] == edge
        assert router.info["suite"] == suite and router.info["objective"] == "usd"
        assert router.info["rounds"] == 1
        cal = router.info["calibration"]
        assert cal["seeds"] == list(range(10000, 10020))
        assert router.threshold == cal["threshold"] == threshold
        (chosen,) = [row for row in cal["table"] if row["threshold"] == threshold]
        assert chosen["success"] >= 0.95
        usd = (cal["always_cloud"]["cloud_usd"], chosen["cloud_usd"])
        assert usd == pytest.approx(usd_measured)


def test_the_default_router_is_the_usd_objective_one_calibrated_on_dev() -> None:
    """The default (SmolLM2, twc) router is the one BENCHMARKS measured: replay labels priced
    in USD, IL + one RL round, threshold chosen by `hera calibrate --thresholds` on 20 twc dev
    episodes (never on test seeds)."""
    router = HeraRouter("shipped")
    assert router.info["objective"] == "usd" and router.info["rounds"] == 1
    cal = router.info["calibration"]
    assert (cal["method"], cal["suite"], cal["fold"]) == ("closed-loop dev", "twc", "dev")
    assert cal["seeds"] == list(range(10000, 10020)) and router.threshold == cal["threshold"] == 0.5
