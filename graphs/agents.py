"""Compiled langgraph-hera graphs for `langgraph dev` / LangGraph Server.

Configuration through environment variables (nothing connects at import):

- ``HERA_EDGE_URL`` / ``HERA_EDGE_MODEL``: the edge's OpenAI-compatible server
  (default ``http://127.0.0.1:8000/v1`` serving ``smollm2-135m-instruct``, as `hera serve` does).
- ``OPENAI_API_KEY`` and ``HERA_CLOUD_MODEL`` (default ``gpt-4o``): the cloud model. Without a
  key, the text agent's cloud is the **expert stand-in** (an environment planner, not a model).
- ``HERA_CLOUD_URL``: an OpenAI-compatible ``/v1`` URL for the cloud model instead of OpenAI's
  (a gateway, a local server; the key is then optional).
- ``HERA_POLICY``: a registered policy name (default ``threshold``). For ``hera``,
  ``HERA_ROUTER`` is the router file (`hera train`; for the tool agents, one trained on your
  agent's traces with ``hera train --traces``); without it the text agent plays the router
  shipped for ``HERA_EDGE_MODEL`` on twc (`shipped_router`), and the tool agents refuse to load.
- ``HERA_VERIFY_EVERY``: the supervised agents' verification interval T_v (default 4).

Graphs: ``hera_agent`` (router node), ``hera_middleware_agent`` (``create_agent`` with
`HeraRoutingMiddleware`; caps from the run's ``context``), ``hera_text_agent``, the supervised
ones. Run ``cd graphs && langgraph dev`` (graph paths are resolved from the working directory).
"""

from __future__ import annotations

import os

from langchain.agents import create_agent
from langchain_core.tools import tool

from langgraph_hera import (
    HeraContext,
    HeraRoutingMiddleware,
    create_hera_agent,
    create_supervised_agent,
    create_supervised_text_agent,
    create_text_agent,
    edge_chat_model,
)
from langgraph_hera.policies import RoutingPolicy, get_policy, shipped_router

EDGE_URL = os.environ.get("HERA_EDGE_URL", "http://127.0.0.1:8000/v1")
EDGE_MODEL = os.environ.get("HERA_EDGE_MODEL", "smollm2-135m-instruct")
POLICY = os.environ.get("HERA_POLICY", "threshold")
ROUTER = os.environ.get("HERA_ROUTER")


def _policy(text_agent: bool) -> RoutingPolicy:
    """``HERA_POLICY``; for ``hera`` the router in ``HERA_ROUTER`` (or, for the text agent,
    the one shipped for the edge).

    Raises:
        ValueError: ``HERA_POLICY=hera`` for a tool agent without ``HERA_ROUTER`` (the shipped
            routers are for the text games: an untrained one cannot decide).
    """
    if POLICY != "hera":
        return get_policy(POLICY)
    if ROUTER:
        return get_policy("hera", path=ROUTER)
    if text_agent:
        return get_policy("hera", path=str(shipped_router(EDGE_MODEL, "twc")))
    raise ValueError(
        "HERA_POLICY=hera needs HERA_ROUTER=<router.npz> for the tool agents: a router trained "
        "on your agent's traces (hera train --traces ...); the shipped routers are for the "
        "text games"
    )


VERIFY_EVERY = int(os.environ.get("HERA_VERIFY_EVERY", "4"))


def _cloud_model(**kwargs: object):  # noqa: ANN202 - returns a chat model
    """The configured cloud model (``OPENAI_API_KEY`` / ``HERA_CLOUD_URL``), or ``None``."""
    url = os.environ.get("HERA_CLOUD_URL")
    if not (url or os.environ.get("OPENAI_API_KEY")):
        return None
    from langchain_openai import ChatOpenAI

    model = os.environ.get("HERA_CLOUD_MODEL", "gpt-4o")
    if url:
        kwargs.update(base_url=url, api_key=os.environ.get("OPENAI_API_KEY") or "EMPTY")
    return ChatOpenAI(model=model, temperature=0, **kwargs)


def _cloud(text_agent: bool):  # noqa: ANN202 - returns a chat model
    if (cloud := _cloud_model()) is not None:
        return cloud
    if not text_agent:
        # No key: the tool agent's "cloud" is the edge server too, clearly named as such.
        return edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=256)
    from langgraph_hera.envs import ExpertChatModel
    from langgraph_hera.routing.env_node import current_env

    return ExpertChatModel(
        expert=lambda: current_env().expert_action(),
        valid_actions=lambda: current_env().valid_actions,
    )


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / and parentheses."""
    allowed = set("0123456789+-*/(). ")
    if not set(expression) <= allowed:
        return f"error: only digits and + - * / ( ) are allowed, got {expression!r}"
    try:
        return str(eval(expression, {"__builtins__": {}}, {}))  # noqa: S307 - filtered above
    except Exception as exc:  # the tool reports, the agent decides
        return f"error: {exc}"


hera_agent = create_hera_agent(
    edge=edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=256),
    cloud=_cloud(text_agent=False),
    tools=[calculator],
    policy=_policy(text_agent=False),
    name="hera_agent",
)

#: `create_agent` with `HeraRoutingMiddleware`: the route log, ledger and caps (run context:
#: ``{"max_cloud_calls": 2, "budget_scope": "thread"}``) live in each thread's checkpoint.
_mw_edge = edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=256)
_mw_cloud = _cloud(text_agent=False)
hera_middleware_agent = create_agent(
    _mw_cloud,
    tools=[calculator],
    context_schema=HeraContext,
    middleware=[
        HeraRoutingMiddleware(edge=_mw_edge, cloud=_mw_cloud, policy=_policy(text_agent=False))
    ],
    name="hera_middleware_agent",
)

hera_text_agent = create_text_agent(
    edge=edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=24),
    cloud=_cloud(text_agent=True),
    policy=_policy(text_agent=True),
    name="hera_text_agent",
)


def _supervisor(text_agent: bool):  # noqa: ANN202 - returns a chat model
    if (cloud := _cloud_model(max_completion_tokens=300)) is not None:
        return cloud
    if not text_agent:
        # No key: the tool agent's supervisor is the edge server too, clearly named as such.
        return edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=256)
    from langgraph_hera.routing.env_node import current_env
    from langgraph_hera.supervision import ExpertSupervisor, expert_plan

    return ExpertSupervisor(planner=lambda: expert_plan(current_env()))


def _supervised_text_agent(mode: str):  # noqa: ANN202 - a compiled graph
    return create_supervised_text_agent(
        executor=edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=24),
        supervisor=_supervisor(text_agent=True),
        mode=mode,
        verify_every=VERIFY_EVERY,
        name=f"{mode}_text_agent",
    )


pevr_text_agent = _supervised_text_agent("pevr")
eva_text_agent = _supervised_text_agent("eva")

supervised_agent = create_supervised_agent(
    executor=edge_chat_model(EDGE_URL, EDGE_MODEL, max_tokens=256),
    supervisor=_supervisor(text_agent=False),
    tools=[calculator],
    mode="eva",
    verify_every=VERIFY_EVERY,
    name="supervised_agent",
)
