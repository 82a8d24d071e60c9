"""Router node, route condition, model nodes and graph wiring."""

from langgraph_hera.routing.decide import (
    Caps,
    CloudBudgetExceeded,
    CloudReservations,
    StepOutcome,
    budget_block,
)
from langgraph_hera.routing.decision_model import HeraDecisionModel
from langgraph_hera.routing.env_node import create_env_node, route_after_env
from langgraph_hera.routing.graph import add_router, create_hera_agent, create_text_agent
from langgraph_hera.routing.middleware import HeraRoutingMiddleware, HeraRoutingState
from langgraph_hera.routing.nodes import (
    create_action_node,
    create_model_node,
    parse_action,
)
from langgraph_hera.routing.routed import (
    RoutedChatModel,
    ledger_from_messages,
    route_log_from_messages,
)
from langgraph_hera.routing.router import (
    begin_run,
    create_router_node,
    decide_state_step,
    decide_step,
    route_by_decision,
)
from langgraph_hera.routing.wire import to_wire, unusable_reply

__all__ = [
    "Caps",
    "HeraDecisionModel",
    "HeraRoutingMiddleware",
    "HeraRoutingState",
    "CloudBudgetExceeded",
    "CloudReservations",
    "RoutedChatModel",
    "StepOutcome",
    "add_router",
    "begin_run",
    "budget_block",
    "create_action_node",
    "create_env_node",
    "create_hera_agent",
    "create_model_node",
    "create_router_node",
    "create_text_agent",
    "decide_state_step",
    "decide_step",
    "ledger_from_messages",
    "parse_action",
    "route_after_env",
    "route_by_decision",
    "route_log_from_messages",
    "to_wire",
    "unusable_reply",
]
