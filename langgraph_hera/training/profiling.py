"""Offline profiling for the HERA/AIMS scheduler (`HeraScheduler`): the data its estimators use.

`profile_tasks` (text-action environments: a subtask is one step) and `profile_chat_tasks`
(question-answering / tool requests: a subtask is one agent turn) build a `SchedulerProfile`:
for each train task, a binary tree of edge/cloud choices down to depth D (every node: the state,
the edge's action, the cloud's action, and the two child nodes), S-L distances, and an all-edge
and an all-cloud run of the whole task (the request-level similarity).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langgraph_hera.policies.embedders import (
    DEFAULT_EMBEDDING_MODEL,
    Embedder,
    embedder_for,
    unit_rows,
)
from langgraph_hera.policies.features import normalize_text
from langgraph_hera.policies.hera_scheduler import (
    ProfileNode,
    SchedulerProfile,
    request_text,
    state_text,
)
from langgraph_hera.routing.features import message_text, route_input_from_messages
from langgraph_hera.routing.nodes import action_prompt, constrained, parse_action


def _edge_action(edge: Any, task: str, observation: str, valid: list[str], past: list) -> str:
    # The text agent's prompt: the last steps of ``past`` (its history window).
    prompt = action_prompt(
        {"task": task, "observation": observation, "valid_actions": valid, "trajectory": past}
    )
    reply = constrained(edge, valid).invoke(prompt)
    text = reply.text if isinstance(reply.text, str) else str(reply.text)
    return parse_action(text, valid)[0]


def profile_tasks(
    env_factory: Callable[[], Any],
    edge: Any,
    seeds: Sequence[int],
    *,
    depth: int = 3,
    request_steps: int = 15,
    on_task: Callable[[int], None] | None = None,
) -> SchedulerProfile:
    """Profile ``seeds`` with the real edge model and the environment's expert as the cloud.

    For each task: a binary tree of edge/cloud choices down to ``depth`` (the paper's data
    collection; identical choices share a child), and an all-edge and an all-cloud run of at
    most ``request_steps`` steps whose outcomes give the request-level similarity (1 when both
    succeed or both fail, else 0).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth!r}")
    profile = SchedulerProfile()
    env = env_factory()
    try:
        for seed in seeds:
            _profile_one(env, edge, int(seed), depth, request_steps, profile)
            if on_task:
                on_task(int(seed))
    finally:
        env.close()
    return profile


def _replay(env: Any, seed: int, path: Sequence[str]) -> tuple[Any, list[dict[str, str]]]:
    """The state after ``path``, and the path as history records (what the edge's prompt
    shows of the recent steps, as in the text agent)."""
    obs = env.reset(seed)
    history = []
    for action in path:
        obs = env.step(action)
        history.append({"action": action, "next_observation": obs.observation})
    return obs, history


def _profile_one(
    env: Any, edge: Any, seed: int, depth: int, request_steps: int, profile: SchedulerProfile
) -> None:
    first = len(profile.nodes)
    frontier: list[tuple[list[str], int, int, str]] = [([], 0, -1, "")]
    while frontier:
        path, d, parent, side = frontier.pop(0)
        obs, history = _replay(env, seed, path)
        if obs.done:
            continue
        edge_a = _edge_action(edge, obs.task, obs.observation, list(obs.valid_actions), history)
        cloud_a = str(env.expert_action())
        node = ProfileNode(
            seed=seed,
            depth=d,
            state=state_text(obs.task, obs.observation, path[-1] if path else ""),
            edge_action=edge_a,
            cloud_action=cloud_a,
        )
        index = len(profile.nodes)
        profile.nodes.append(node)
        if parent >= 0:
            setattr(profile.nodes[parent], f"{side}_child", index)
            if side == "edge" and profile.nodes[parent].edge_action == (
                profile.nodes[parent].cloud_action
            ):
                profile.nodes[parent].cloud_child = index
        if d + 1 < depth:
            frontier.append(([*path, edge_a], d + 1, index, "edge"))
            if cloud_a != edge_a:
                frontier.append(([*path, cloud_a], d + 1, index, "cloud"))
    _sl_distances(profile, first)
    # Whole-request outcomes: all-edge and all-cloud.
    outcomes = []
    for side in ("edge", "cloud"):
        obs, history = env.reset(seed), []
        for _ in range(request_steps):
            if obs.done:
                break
            if side == "cloud":
                action = str(env.expert_action())
            else:
                valid = list(obs.valid_actions)
                action = _edge_action(edge, obs.task, obs.observation, valid, history)
            obs = env.step(action)
            history.append({"action": action, "next_observation": obs.observation})
        outcomes.append(bool(obs.success))
    profile.requests.append(request_text(obs.task))
    profile.request_similarity.append(float(outcomes[0] == outcomes[1]))


def _same_action(a: str, b: str) -> bool:
    return normalize_text(a) == normalize_text(b)


def _sl_distances(
    profile: SchedulerProfile, first: int, same: Callable[[str, str], bool] = _same_action
) -> None:
    """S-L distance of each node of one task's tree: steps along the edge chain until an edge
    output is the ``same`` as the node's cloud output (exact action match by default)."""
    nodes = profile.nodes
    for node in nodes[first:]:
        j, cur = 0, node
        while True:
            if same(cur.edge_action, node.cloud_action):
                node.sl_distance = j
                break
            if cur.edge_child < 0:
                break
            cur, j = nodes[cur.edge_child], j + 1


# --------------------------------------------------------------------------- chat / tool tasks


def _run_tools(message: Any, tools: dict[str, Any]) -> list[Any]:
    """Execute a reply's tool calls; errors become the tool's answer (as a ToolNode does)."""
    from langchain_core.messages import ToolMessage

    out = []
    for call in getattr(message, "tool_calls", None) or []:
        tool = tools.get(call["name"])
        try:
            result = tool.invoke(call["args"]) if tool else f"error: no tool {call['name']!r}"
        except Exception as exc:  # the tool reports, the agent goes on
            result = f"error: {type(exc).__name__}: {exc}"
        out.append(ToolMessage(str(result), tool_call_id=call.get("id") or call["name"]))
    return out


def profile_chat_tasks(
    requests: Sequence[str],
    edge: Any,
    cloud: Any,
    *,
    tools: Sequence[Any] = (),
    depth: int = 2,
    max_turns: int = 6,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    embedder: Embedder | None = None,
    similar: float = 0.7,
    on_task: Callable[[int], None] | None = None,
) -> SchedulerProfile:
    """Profile question-answering / tool-calling requests (the paper's own setting).

    A subtask is one agent turn; its output is the turn's message (text, or its tool calls as
    ``name(args)``). For each request: a tree of edge/cloud turns down to ``depth`` (a turn with
    tool calls has its tools executed before the child turn; an answer is a leaf), and an
    all-edge and an all-cloud run of at most ``max_turns`` turns, whose final answers' SBERT
    similarity is the request-level target of the URC. S-L distances count edge turns until an
    edge output is ``similar`` to the cloud's.

    Args:
        requests: User requests (train split).
        edge: The edge chat model (pass it unbound; ``tools`` are bound here).
        cloud: The cloud chat model (likewise).
        tools: Tools both may call.
        depth: Tree depth in turns.
        max_turns: Turn cap of the all-edge / all-cloud runs.
        embedding_model: Sentence-embedding model id for output similarity.
        embedder: An embedder instance instead (e.g. hashed, in tests).
        similar: Cosine at which two outputs count as the same.
        on_task: Called with each request's index when it is profiled.
    """
    from langchain_core.messages import BaseMessage, HumanMessage

    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth!r}")
    emb = embedder or embedder_for(embedding_model)
    tool_map = {t.name: t for t in tools}
    sides = {
        "edge": edge.bind_tools(list(tools)) if tools else edge,
        "cloud": cloud.bind_tools(list(tools)) if tools else cloud,
    }

    def sim(a: str, b: str) -> float:
        va, vb = unit_rows(emb.embed([a or " ", b or " "]))
        return float(va @ vb)

    profile = SchedulerProfile()
    for r, request in enumerate(requests):
        first = len(profile.nodes)
        frontier: list[tuple[list[BaseMessage], int, int, str]] = [
            ([HumanMessage(request)], 0, -1, "")
        ]
        while frontier:
            conv, d, parent, side = frontier.pop(0)
            replies = {k: m.invoke(conv) for k, m in sides.items()}
            ri = route_input_from_messages(conv)
            node = ProfileNode(
                seed=r,
                depth=d,
                state=state_text(ri.task, ri.observation, ri.last_action),
                edge_action=message_text(replies["edge"]),
                cloud_action=message_text(replies["cloud"]),
            )
            index = len(profile.nodes)
            profile.nodes.append(node)
            if parent >= 0:
                setattr(profile.nodes[parent], f"{side}_child", index)
            if d + 1 < depth:
                for k, reply in replies.items():
                    if getattr(reply, "tool_calls", None):
                        frontier.append(
                            ([*conv, reply, *_run_tools(reply, tool_map)], d + 1, index, k)
                        )
        _sl_distances(profile, first, lambda a, b: sim(a, b) >= similar)
        finals = []
        for model in sides.values():
            conv = [HumanMessage(request)]
            for _ in range(max_turns):
                reply = model.invoke(conv)
                conv.append(reply)
                if not getattr(reply, "tool_calls", None):
                    break
                conv += _run_tools(reply, tool_map)
            finals.append(message_text(conv[-1]))
        profile.requests.append(request_text(request))
        profile.request_similarity.append(sim(*finals))
        if on_task:
            on_task(r)
    return profile
