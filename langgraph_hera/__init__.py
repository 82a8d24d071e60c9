"""langgraph-hera: step-level edge/cloud routing for long-horizon LangGraph agents.

Most steps of an agent run on a small edge model (vLLM, OpenAI-compatible); the cloud model runs
only the steps a policy sends it. Import the pieces from here; policies live in
`langgraph_hera.policies`.
"""

from langgraph_hera.accounting import CostLedger, ModelPrice, Pricing
from langgraph_hera.models import ChatEdge, EdgeServer, edge_chat_model
from langgraph_hera.policies import RoutingPolicy
from langgraph_hera.routing import (
    Caps,
    CloudBudgetExceeded,
    HeraDecisionModel,
    HeraRoutingMiddleware,
    RoutedChatModel,
    add_router,
    create_hera_agent,
    create_router_node,
    create_text_agent,
    ledger_from_messages,
    route_by_decision,
    route_log_from_messages,
)
from langgraph_hera.state import (
    Decision,
    HeraContext,
    HeraState,
    LedgerEntry,
    RouteInput,
    RoutingState,
    SupervisionState,
    SupervisorDecision,
    Target,
    TextEnvState,
)
from langgraph_hera.supervision import (
    create_supervised_agent,
    create_supervised_text_agent,
    create_supervisor_node,
)

__version__ = "0.1.0"

__all__ = [
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
