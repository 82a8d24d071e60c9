import langgraph_hera
import langgraph_hera.policies as policies

EXPECTED_ALL = [
    "Caps",
    "HeraDecisionModel",
    "HeraRoutingMiddleware",
    "ChatEdge",
    "CloudBudgetExceeded",
    "CostLedger",
    "Decision",
    "EdgeServer",
    "HeraContext",
    "HeraState",
    "LedgerEntry",
    "ModelPrice",
    "Pricing",
    "RouteInput",
    "RoutedChatModel",
    "RoutingPolicy",
    "RoutingState",
    "SupervisionState",
    "SupervisorDecision",
    "Target",
    "TextEnvState",
    "add_router",
    "create_hera_agent",
    "create_router_node",
    "create_supervised_agent",
    "create_supervised_text_agent",
    "create_supervisor_node",
    "create_text_agent",
    "edge_chat_model",
    "ledger_from_messages",
    "route_by_decision",
    "route_log_from_messages",
]


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(langgraph_hera.__all__) == sorted(EXPECTED_ALL)
    for name in langgraph_hera.__all__:
        assert getattr(langgraph_hera, name) is not None


def test_policy_registry_lists_baselines() -> None:
    assert set(policies.available_policies()) >= {
        "always-edge",
        "always-cloud",
        "random",
        "task-level",
        "threshold",
    }


def test_import_does_not_load_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys, langgraph_hera, langgraph_hera.policies, langgraph_hera.routing;"
        "heavy=[m for m in ('torch','vllm','sentence_transformers','textworld_express',"
        "'transformers') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_py_typed_marker_ships() -> None:
    from pathlib import Path

    assert (Path(langgraph_hera.__file__).parent / "py.typed").exists()
