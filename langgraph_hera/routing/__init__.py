"""Router node, route condition, model nodes and graph wiring."""

from langgraph_hera.routing.env_node import create_env_node, route_after_env
from langgraph_hera.routing.graph import add_router, create_hera_agent, create_text_agent
from langgraph_hera.routing.nodes import (
    create_action_node,
    create_model_node,
    parse_action,
)
from langgraph_hera.routing.router import create_router_node, decide_step, route_by_decision

__all__ = [
    "add_router",
    "create_action_node",
    "create_env_node",
    "create_hera_agent",
    "create_model_node",
    "create_router_node",
    "create_text_agent",
    "decide_step",
    "parse_action",
    "route_after_env",
    "route_by_decision",
]
