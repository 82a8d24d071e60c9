"""BFCL multi-turn: splits, stateless tools on BFCL's API classes, BFCL's checker, the expert
stand-in, and routed 2-turn episodes with scripted models (no network, no model)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

pytest.importorskip(
    "bfcl_eval", reason="bfcl-eval is not installed (pip install --no-deps bfcl-eval)"
)

from langgraph_hera.envs.bfcl import (  # noqa: E402
    SPLIT_SIZES,
    calls_before,
    decoded_turns,
    execute,
    get_task,
    load_tasks,
    make_tools,
    score_task,
    split_ids,
    text_tool_calls,
)
from langgraph_hera.envs.bfcl_expert import (  # noqa: E402
    EXPERT_LABEL,
    FINAL_TEXT,
    BfclExpertChatModel,
    remaining_calls,
)
from langgraph_hera.routing.middleware import HeraRoutingMiddleware  # noqa: E402
from tests.conftest import ScriptedChat, TargetsPolicy  # noqa: E402

TASK = "multi_turn_base_0"  # GorillaFileSystem + TwitterAPI, 4 turns


def _call(name: str, i: int, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"c{i}"}


def test_splits_are_deterministic_disjoint_and_sized() -> None:
    splits = {s: split_ids(s) for s in ("train", "dev", "test")}  # type: ignore[arg-type]
    assert {s: len(v) for s, v in splits.items()} == SPLIT_SIZES
    assert not set(splits["train"]) & set(splits["dev"])
    assert not set(splits["dev"]) & set(splits["test"])
    assert splits["dev"] == split_ids("dev")
    full = [split_ids(s, sizes="full") for s in ("train", "dev", "test")]  # type: ignore[arg-type]
    assert sum(map(len, full)) == len(load_tasks()) == 200
    with pytest.raises(ValueError, match="unknown split 'val'"):
        split_ids("val")  # type: ignore[arg-type]


def test_task_loader_has_turns_truth_and_docs() -> None:
    task = get_task(TASK)
    assert len(task.turns) == len(task.ground_truth) == 4
    assert "final_report.pdf" in task.turns[0]
    assert task.ground_truth[0][0] == "cd(folder='document')"
    assert {"cd", "mkdir", "post_tweet"} <= {f["name"] for f in task.functions}


def test_tools_execute_against_the_threads_state() -> None:
    task = get_task(TASK)
    tools = {t.name: t for t in make_tools(task)}
    assert tools["mkdir"].tool_call_schema["properties"]["dir_name"]["type"] == "string"  # type: ignore[index]
    messages = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[_call("cd", 1, folder="document")]),
        ToolMessage('{"current_working_directory": "document"}', tool_call_id="c1"),
        AIMessage("", tool_calls=[_call("mkdir", 2, dir_name="temp"), _call("ls", 3)]),
    ]
    # ls in the same step as mkdir sees it (calls of a step run as if sequential).
    assert calls_before(messages, "c3") == ["cd(folder='document')", "mkdir(dir_name='temp')"]
    results, instances = execute(task, calls_before(messages, "c3") + ["ls()"])
    assert "temp" in results[-1] and "final_report.pdf" in results[-1]
    # Without the thread's cd, the same call runs at the root: no state is shared in memory.
    assert "temp" not in execute(task, ["ls()"])[0][-1]


def test_checker_scores_a_ground_truth_replay_100_percent() -> None:
    task = get_task(TASK)
    decoded = [[list(turn)] for turn in task.ground_truth]
    assert score_task(task, decoded) == {
        "valid": True, "turns": [True] * 4, "turn_accuracy": 1.0,
        "error_type": None, "error_message": None,
    }  # fmt: skip
    wrong = score_task(task, [decoded[0], [["ls()"]], decoded[2], decoded[3]])
    assert wrong["turns"] == [True, False, False, False] and not wrong["valid"]
    assert wrong["error_type"].startswith("multi_turn:")
    assert not score_task(task, decoded, forced_quit=True)["valid"]


def test_expert_continues_a_turn_from_a_partial_state() -> None:
    task = get_task(TASK)
    expert = BfclExpertChatModel(task=task)
    messages: list[Any] = [
        HumanMessage(task.turns[0]),
        AIMessage("", tool_calls=[_call("cd", 1, folder="document")]),
        ToolMessage("ok", tool_call_id="c1"),
    ]
    # The agent already did the turn's first call: what remains is mkdir then mv.
    assert remaining_calls(task, messages) == list(task.ground_truth[0][1:])
    reply = expert.invoke(messages)
    assert reply.tool_calls[0]["name"] == "mkdir"
    assert reply.tool_calls[0]["args"] == {"dir_name": "temp"}
    assert reply.response_metadata["stand_in"] == EXPERT_LABEL
    assert reply.usage_metadata and reply.usage_metadata["input_tokens"] > 0
    # A different but equivalent path (mkdir from the root then a wrong-path attempt) still
    # finishes from the state reached; a done turn ends with a text answer.
    done = messages + [
        AIMessage("", tool_calls=[_call("mkdir", 2, dir_name="temp")]),
        ToolMessage("ok", tool_call_id="c2"),
        AIMessage("", tool_calls=[_call("mv", 3, source="final_report.pdf", destination="temp")]),
        ToolMessage("ok", tool_call_id="c3"),
    ]
    assert remaining_calls(task, done) == []
    assert expert.invoke(done).content == FINAL_TEXT
    # Positional ground truth (sort('final_report.pdf')) is answered with named arguments.
    turn2 = done + [AIMessage("x"), HumanMessage(task.turns[1]),
                    AIMessage("", tool_calls=[_call("cd", 4, folder="temp")]),
                    ToolMessage("ok", tool_call_id="c4"),
                    AIMessage("", tool_calls=[_call("grep", 5, file_name="final_report.pdf",
                                                     pattern="budget analysis")]),
                    ToolMessage("ok", tool_call_id="c5"), AIMessage("y"),
                    HumanMessage(task.turns[2])]  # fmt: skip
    assert expert.invoke(turn2).tool_calls[0]["args"] == {"file_name": "final_report.pdf"}


def test_two_turn_episode_with_scripted_edge_and_expert_cloud() -> None:
    task = get_task(TASK)
    # Turn 0: the edge does cd, then the cloud (expert) finishes mkdir + mv and answers.
    # Turn 1: the edge answers with text at once -> empty turn -> BFCL fails turn 1.
    edge = ScriptedChat(
        script=[AIMessage("", tool_calls=[_call("cd", 1, folder="document")]), "all done"],
        name_="edge",
    )
    cloud = BfclExpertChatModel(task=task)
    policy = TargetsPolicy(["edge", "cloud", "cloud", "cloud", "edge"])
    agent = create_agent(
        cloud, make_tools(task), checkpointer=InMemorySaver(),
        middleware=[HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=policy)],
    )  # fmt: skip
    config: dict[str, Any] = {"configurable": {"thread_id": "t"}, "recursion_limit": 43}
    for text in task.turns[:2]:
        out = agent.invoke({"messages": [HumanMessage(text)]}, config)
    decoded = decoded_turns(out["messages"])
    assert decoded[0] == [["cd(folder='document')"], ["mkdir(dir_name='temp')"],
                          ["mv(source='final_report.pdf',destination='temp')"]]  # fmt: skip
    assert decoded[1] == []
    targets = [d["target"] for d in out["route_log"]]
    assert targets[:4] == ["edge", "cloud", "cloud", "cloud"]
    tool_results = [m.content for m in out["messages"] if isinstance(m, ToolMessage)]
    assert "temp/final_report.pdf" in tool_results[-1]  # the tools ran on the thread's state
    score = score_task(task, decoded)
    assert score["turns"][:2] == [True, False] and not score["valid"]


def test_text_tool_calls_reads_json_written_in_the_content() -> None:
    fenced = '```json\n{"name": "cd", "arguments": {"folder": "temp"}}\n```'
    (call,) = text_tool_calls(fenced)
    assert (call["name"], call["args"], call["type"]) == ("cd", {"folder": "temp"}, "tool_call")
    both = text_tool_calls('[{"name": "ls", "parameters": {}}, {"name": "pwd", "arguments": "{}"}]')
    assert [c["name"] for c in both] == ["ls", "pwd"]
    assert text_tool_calls("The file is moved.") == []
    assert text_tool_calls('{"name": 3}') == []
