"""Your agent, your router: record a tool-calling agent, replay the edge, label, train, deploy.

    python examples/train_router_on_your_agent.py                  # offline: scripted models
    python examples/train_router_on_your_agent.py --edge-url http://127.0.0.1:PORT/v1 \\
        --edge-model NAME                                           # your edge replays

The agent is `langchain.agents.create_agent` with `HeraRoutingMiddleware` and a weather tool.
1. Record: the agent runs every step on the cloud (``always-cloud``) and `record_thread` stores
   each thread's steps (messages, tools, the answer, decision, cost) in a `TraceStore`.
2. Replay: `replay_traces` asks the edge for its answer at every recorded step.
3. Label + train + calibrate: `train_on_traces` labels each step 1 where the edge's tool call or
   answer disagrees with the cloud's, fits a `HeraRouter` and sets its threshold for a 30%
   cloud share on dev traces.
4. Deploy: the saved router in the middleware; 5. the offline report on held-out traces.

The cloud is a scripted expert (it calls the tool with the asked city, then answers); without
``--edge-url`` the edge is a scripted weak model that spells some cities wrong. With a real
edge, replies it cannot give (a server without tool calling) count as disagreements.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_hera import edge_chat_model
from langgraph_hera.evaluation.traces_report import trace_report
from langgraph_hera.policies import HeraRouter
from langgraph_hera.routing.middleware import HeraRoutingMiddleware
from langgraph_hera.training import TraceStore, record_thread, replay_traces, train_on_traces
from langgraph_hera.training.tool_router import default_trace_spec

CITIES = ["Paris", "Oslo", "Lima", "Rome", "Cairo", "Quito", "Accra", "Hanoi", "Berlin", "Tokyo"]
CITIES += ["Madrid", "Sofia", "Dakar", "Kyiv", "Seoul", "Bern"]


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny, {len(city) + 15} C"


class Scripted(BaseChatModel):
    """A chat model answering from a function of the messages (stands in for a real one)."""

    fn: Callable[[list[BaseMessage]], AIMessage]
    name_: str = "scripted"

    @property
    def _llm_type(self) -> str:
        return self.name_

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        reply = self.fn(messages)
        words = sum(len(str(m.content).split()) for m in messages)
        reply.usage_metadata = {
            "input_tokens": 4 * words,
            "output_tokens": 12,
            "total_tokens": 4 * words + 12,
        }
        reply.response_metadata = {"model_name": self.name_}
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self


def _city(messages: list[BaseMessage]) -> str:
    user = [m for m in messages if isinstance(m, HumanMessage)][-1]
    return str(user.content).rsplit(" ", 1)[-1].strip("?")


def expert(messages: list[BaseMessage]) -> AIMessage:
    if isinstance(messages[-1], ToolMessage):
        return AIMessage(f"It is {messages[-1].content} in {_city(messages)}.")
    args = {"city": _city(messages)}
    return AIMessage("", tool_calls=[{"name": "get_weather", "args": args, "id": uuid.uuid4().hex}])


def weak_edge(messages: list[BaseMessage]) -> AIMessage:
    if isinstance(messages[-1], ToolMessage):
        return AIMessage(f"It is {messages[-1].content} in {_city(messages)}.")
    city = _city(messages)
    args = {"city": city if len(city) <= 4 else city.lower()}  # long names: wrong spelling
    return AIMessage("", tool_calls=[{"name": "get_weather", "args": args, "id": "e"}])


def record(store: TraceStore, cities: list[str], edge: Any, cloud: Any) -> None:
    mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy="always-cloud")
    agent = create_agent(cloud, tools=[get_weather], middleware=[mw], checkpointer=InMemorySaver())
    for city in cities:
        config = {"configurable": {"thread_id": f"{store.path.name}-{city}"}}
        agent.invoke({"messages": [("user", f"What is the weather in {city}")]}, config)
        record_thread(agent, config, store, tools=[get_weather])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: a scripted offline edge")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument("--out", default=None, help="directory (default: a temporary one)")
    args = parser.parse_args()

    cloud = Scripted(fn=expert, name_="gpt-4o")
    if args.edge_url:
        edge: Any = edge_chat_model(args.edge_url, args.edge_model, max_tokens=64)
    else:
        edge = Scripted(fn=weak_edge, name_="edge")
    root = Path(args.out or tempfile.mkdtemp(prefix="hera-traces-"))
    stores = {name: TraceStore(root / name) for name in ("train", "dev", "test")}
    splits = {"train": CITIES[:10], "dev": CITIES[10:13], "test": CITIES[13:]}

    for name, store in stores.items():  # 1. record, 2. replay
        record(store, splits[name], edge, cloud)
        summary = replay_traces(store, edge, concurrency=4)
        print(
            f"{name}: {len(store.steps())} steps recorded, {summary.replayed} replayed "
            f"({summary.errors} edge errors)"
        )

    run = train_on_traces(  # 3. label, train, calibrate
        stores["train"],
        dev_traces=stores["dev"],
        out=root / "router.npz",
        target_cloud_share=0.3,
        spec=default_trace_spec("hashed"),
        embedder="lexical",
    )
    print(f"trained: {run.summary()}")

    router = HeraRouter(root / "router.npz")  # 4. deploy in the middleware
    mw = HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=router)
    agent = create_agent(cloud, tools=[get_weather], middleware=[mw])
    out = agent.invoke({"messages": [("user", "What is the weather in Reykjavik")]})
    print("deployed:", [(d["target"], round(d["score"], 3)) for d in out["route_log"]])

    report = trace_report(stores["test"], router, out_dir=root / "report", embedder="lexical")
    print("offline report:")  # 5. the report on held-out traces
    print(report.markdown)


if __name__ == "__main__":
    main()
