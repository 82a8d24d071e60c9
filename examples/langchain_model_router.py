"""LangChain's own `ModelRouterMiddleware`, deciding edge or cloud with a Hera routing policy.

    python examples/langchain_model_router.py                     # starts the embedded edge
    python examples/langchain_model_router.py --edge-url http://127.0.0.1:PORT/v1  # yours
    python examples/langchain_model_router.py --router router.npz  # your trained Hera router

`ModelRouterMiddleware` (beta) picks one model per run from the latest user request, by asking
its classifier (a LangChain `BaseDecisionModel`) a choice between named models.
`HeraDecisionModel` is that classifier, answered by a routing policy: here `TaskLevelRouter`
(longer requests are harder, cloud from ~40 words) or, with ``--router FILE``, a `HeraRouter`
trained on your own chat traffic (`hera train --traces`; examples/train_router_on_your_agent.py
--out DIR leaves one in DIR/router.npz). The routers shipped with the package are trained on
text games, not chat requests, so none is offered here. The cloud is `gpt-4o` when
OPENAI_API_KEY is set; without a key the edge server plays both sides (the routing is the same).
"""

from __future__ import annotations

import argparse
import os
import warnings

from langchain.agents import create_agent
from langchain.agents.middleware import ModelChoice, ModelRouterMiddleware
from langchain_core._api import LangChainBetaWarning

from langgraph_hera import edge_chat_model
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import HeraRouter, TaskLevelRouter
from langgraph_hera.routing.decision_model import HeraDecisionModel

REQUESTS = [
    "What is the capital of France?",
    "Write a two-week plan for moving a small team's web service from one cloud provider to "
    "another: list what to inventory first, how to copy the data without downtime, how to test "
    "the new setup under real traffic, when to switch the DNS over, how to roll back if "
    "something breaks, and what to tell the users at each stage.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--router",
        default=None,
        help="a Hera router trained on your chat traces (hera train --traces); "
        "default: the task-level baseline",
    )
    args = parser.parse_args()

    policy = HeraRouter(args.router) if args.router else TaskLevelRouter(0.5)
    with edge_endpoint(args.edge_url, args.edge_model) as (url, model_name):
        edge = edge_chat_model(url, model_name, max_tokens=64)
        if os.environ.get("OPENAI_API_KEY"):
            from langchain_openai import ChatOpenAI

            cloud = ChatOpenAI(model="gpt-4o", temperature=0)
        else:  # no key: the edge plays both sides
            cloud = edge_chat_model(url, model_name, max_tokens=64)

        with warnings.catch_warnings():  # the middleware is beta and says so
            warnings.simplefilter("ignore", LangChainBetaWarning)
            router = ModelRouterMiddleware(
                choices={
                    "edge": ModelChoice(model=edge, criteria="Short, well-scoped requests."),
                    "cloud": ModelChoice(model=cloud, criteria="Long, hard requests."),
                },
                instructions="Choose the least costly model suited to the request.",
                classifier=HeraDecisionModel(policy, edge_choice="edge", cloud_choice="cloud"),
            )
        agent = create_agent(cloud, tools=[], middleware=[router], name="model_router_agent")

        counts = {"edge": 0, "cloud": 0}
        for request in REQUESTS:
            out = agent.invoke({"messages": [("user", request)]})
            answer = out["model_route"]  # LangChain's ChoiceAnswer, with Hera's decision
            counts[answer.choice] += 1
            print(f"{answer.choice:>5} (p={answer.confidence:.2f}) <- {request[:48]!r}...")
            print(f"      {answer.decision['reason']}")
            print(f"      reply: {str(out['messages'][-1].text)[:70]!r}")
        print(f"requests routed: {counts}")


if __name__ == "__main__":
    main()
