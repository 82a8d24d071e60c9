"""The shape of every prebuilt graph, as mermaid (``draw_mermaid(with_styles=False)``).

A missing snapshot is written on the first run; review it in the diff. A changed shape fails
here until the snapshot is updated on purpose (delete the file and run again).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.graph import StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_hera import (
    HeraContext,
    HeraRoutingMiddleware,
    RoutingState,
    add_router,
    create_hera_agent,
    create_supervised_agent,
    create_supervised_text_agent,
    create_text_agent,
)
from tests.conftest import ScriptedChat

SNAPSHOTS = Path(__file__).parent / "snapshots"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class _Bindable(ScriptedChat):
    """A scripted chat model that accepts bound tools (for create_agent)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChat:
        return self


def _m() -> ScriptedChat:
    return ScriptedChat(script=[])


def _add_router(after: str | None) -> Any:
    builder = StateGraph(RoutingState)
    if after:
        builder.add_node(after, ToolNode([add]))
    add_router(builder, policy="always-edge", edge=_m(), cloud=_m(), after=after)
    return builder.compile()


GRAPHS: dict[str, Callable[[], Any]] = {
    "add_router": lambda: _add_router("tools"),
    "add_router_no_after": lambda: _add_router(None),
    "hera_agent": lambda: create_hera_agent(edge=_m(), cloud=_m(), tools=[add]),
    "hera_agent_no_tools": lambda: create_hera_agent(edge=_m(), cloud=_m()),
    "hera_text_agent": lambda: create_text_agent(edge=_m(), cloud=_m()),
    "hera_text_agent_edge_first": lambda: create_text_agent(
        edge=_m(), cloud=_m(), propose_edge=True
    ),
    "supervised_agent": lambda: create_supervised_agent(
        executor=_m(), supervisor=_m(), tools=[add]
    ),
    "supervised_agent_no_tools": lambda: create_supervised_agent(executor=_m(), supervisor=_m()),
    "supervised_text_agent": lambda: create_supervised_text_agent(executor=_m(), supervisor=_m()),
    "create_agent_with_middleware": lambda: create_agent(
        _Bindable(script=[]),
        tools=[add],
        middleware=[
            HeraRoutingMiddleware(
                edge=_Bindable(script=[]), cloud=_Bindable(script=[]), policy="always-edge"
            )
        ],
        context_schema=HeraContext,
    ),
}


@pytest.mark.parametrize("which", sorted(GRAPHS))
def test_mermaid_snapshot(which: str) -> None:
    mermaid = GRAPHS[which]().get_graph().draw_mermaid(with_styles=False)
    snap = SNAPSHOTS / f"{which}.mmd"
    if not snap.exists():  # first run writes the snapshot; review it in the diff
        snap.write_text(mermaid)
    assert mermaid == snap.read_text()
