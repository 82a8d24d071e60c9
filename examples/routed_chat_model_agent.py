"""No graph changes: `RoutedChatModel` is a chat model that routes every call edge/cloud.

    python examples/routed_chat_model_agent.py                      # starts the embedded edge
    python examples/routed_chat_model_agent.py --edge-url http://127.0.0.1:PORT/v1  # yours

Pass it wherever a LangChain chat model goes (here `langchain.agents.create_agent`).
"""

from __future__ import annotations

import argparse
import os

from langchain.agents import create_agent
from langchain_core.tools import tool

from langgraph_hera import (
    CostLedger,
    RoutedChatModel,
    edge_chat_model,
    ledger_from_messages,
    route_log_from_messages,
)
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import RandomPolicy


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    with edge_endpoint(args.edge_url, args.edge_model) as (url, model_name):
        edge = edge_chat_model(url, model_name, max_tokens=128)
        if os.environ.get("OPENAI_API_KEY"):
            from langchain_openai import ChatOpenAI

            cloud = ChatOpenAI(model="gpt-4o", temperature=0)
        else:  # no key: the edge plays both sides
            cloud = edge_chat_model(url, model_name, max_tokens=128)
        model = RoutedChatModel(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=0))
        agent = create_agent(model, tools=[add])
        out = agent.invoke({"messages": [("user", "What is 19 + 23? Use the add tool.")]})
        print(out["messages"][-1].content)
        # The decisions and costs ride on the replies: the conversation is the record.
        for decision in route_log_from_messages(out["messages"]):
            print(decision["step"], decision["target"], decision["reason"])
        print(CostLedger(ledger_from_messages(out["messages"])).summary())


if __name__ == "__main__":
    main()
