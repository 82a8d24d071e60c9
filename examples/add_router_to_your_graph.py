"""Add step-level edge/cloud routing to your own tool-calling `StateGraph`.

    python examples/add_router_to_your_graph.py                     # starts the embedded edge
    python examples/add_router_to_your_graph.py --edge-url http://127.0.0.1:PORT/v1  # yours

The cloud is `gpt-4o` when OPENAI_API_KEY is set; without a key this example uses the edge
server for both sides (the routing, the ledger and the trace metadata are the same).
"""

from __future__ import annotations

import argparse
import os

from langchain_core.tools import tool
from langgraph.graph import StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_hera import HeraContext, HeraState, add_router, edge_chat_model
from langgraph_hera.accounting import CostLedger
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import ThresholdRouter


@tool
def word_length(word: str) -> int:
    """Number of letters in a word."""
    return len(word)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    with edge_endpoint(args.edge_url, args.edge_model) as (url, model_name):
        tools = [word_length]
        edge = edge_chat_model(url, model_name, max_tokens=128)
        if os.environ.get("OPENAI_API_KEY"):
            from langchain_openai import ChatOpenAI

            cloud = ChatOpenAI(model="gpt-4o", temperature=0)
        else:
            cloud = edge_chat_model(url, model_name, max_tokens=128)

        builder = StateGraph(HeraState, context_schema=HeraContext)
        builder.add_node("tools", ToolNode(tools))
        add_router(
            builder,
            policy=ThresholdRouter(0.5, scorer="stuck"),  # cloud once the agent repeats itself
            edge=edge.bind_tools(tools),
            cloud=cloud.bind_tools(tools),
            after="tools",
        )
        graph = builder.compile(name="my_routed_agent")
        out = graph.invoke(
            {"messages": [("user", "How many letters are in 'langgraph'? Use the tool.")]},
            context=HeraContext(max_cloud_calls=3, max_steps=6),
        )
        for decision in out["route_log"]:
            print(decision["step"], decision["target"], decision["reason"])
        print(out["messages"][-1].content)
        print(CostLedger(out["ledger"]).summary())


if __name__ == "__main__":
    main()
