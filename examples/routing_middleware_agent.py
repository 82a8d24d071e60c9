"""Step-level routing in `langchain.agents.create_agent`: one middleware, no graph changes.

    python examples/routing_middleware_agent.py                      # starts the embedded edge
    python examples/routing_middleware_agent.py --edge-url http://127.0.0.1:PORT/v1  # yours

`HeraRoutingMiddleware` sends every model call of the agent to the edge or the cloud, as its
policy decides; the decisions (``route_log``) and the costs (``ledger``) land in the agent's
checkpointed state, per thread. Three turns on one thread: each prints the decisions of that
turn and the `CostLedger` of the turn and of the thread so far. The caps come from the run
context (``max_cloud_calls`` per run here). The cloud is `gpt-4o` when OPENAI_API_KEY is set;
without a key the edge server plays both sides (the routing is the same).
"""

from __future__ import annotations

import argparse
import os

from langchain.agents import create_agent
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_hera import CostLedger, HeraContext, edge_chat_model
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import RandomPolicy
from langgraph_hera.routing.middleware import HeraRoutingMiddleware

TURNS = ["What is 19 + 23? Use the add tool.", "And 100 + 1?", "Now add 7 and 35."]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument("--max-cloud-calls", type=int, default=2, help="per run (turn)")
    args = parser.parse_args()

    with edge_endpoint(args.edge_url, args.edge_model) as (url, model_name):
        edge = edge_chat_model(url, model_name, max_tokens=128)
        if os.environ.get("OPENAI_API_KEY"):
            from langchain_openai import ChatOpenAI

            cloud = ChatOpenAI(model="gpt-4o", temperature=0)
        else:  # no key: the edge plays both sides
            cloud = edge_chat_model(url, model_name, max_tokens=128)
        agent = create_agent(
            cloud,
            tools=[add],
            context_schema=HeraContext,
            checkpointer=InMemorySaver(),
            middleware=[
                HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=0))
            ],
        )
        config = {"configurable": {"thread_id": "demo"}, "recursion_limit": 12}
        context = HeraContext(max_cloud_calls=args.max_cloud_calls)  # per run by default
        for n, text in enumerate(TURNS, 1):
            out = agent.invoke({"messages": [("user", text)]}, config, context=context)
            print(f"--- turn {n}: {text!r} -> {str(out['messages'][-1].text)[:60]!r}")
            # route_log and ledger are per thread; each record names its run (turn).
            turn = out["route_log"][-1]["turn"]
            for d in out["route_log"]:
                if d.get("turn") == turn:
                    print(f"  step {d['step']}: {d['target']:<5} {d['reason']}")
            entries = [e for e in out["ledger"] if e.get("turn") == turn]
            print(f"  this turn: {CostLedger(entries).summary()}")
            print(f"  thread so far: {CostLedger(out['ledger']).summary()}")
        print(f"thread after {len(TURNS)} turns: {len(out['route_log'])} routed calls")


if __name__ == "__main__":
    main()
