"""BFCL v4 multi-turn tasks as LangChain tools, scored by BFCL's own checker.

The Berkeley Function Calling Leaderboard (``pip install --no-deps bfcl-eval mpmath``) ships its
multi-turn tasks (``BFCL_v4_multi_turn_*.json``: per-turn user messages, the initial state of a
few stateful API classes such as ``GorillaFileSystem`` or ``TwitterAPI``), the ground-truth calls
per turn, the API classes themselves and the checker. This module reuses all of it:

- `load_tasks` / `split_ids`: the tasks, and deterministic train / dev / test splits by a hash
  of the task id (sizes for 2-core machines by default, ``sizes="full"`` for all tasks);
- `make_tools`: one LangChain tool per function of the task's API classes. A tool call is
  executed by BFCL's ``execute_multi_turn_func_call`` on **fresh** instances built from the
  task's ``initial_config`` after replaying the thread's earlier calls (read from the agent's
  state via ``ToolRuntime``): nothing about a thread lives in process memory, so any worker
  can run the next step of any thread;
- `decoded_turns` / `score_task`: the calls the agent made, per turn and step, in BFCL's
  decoded form, and BFCL's ``multi_turn_checker`` (state and execution-response checks) on
  every turn prefix: per-turn and per-task validity.

bfcl-eval is imported lazily (inside the functions that need it).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

BFCL_INSTALL_HINT = "pip install --no-deps bfcl-eval mpmath==1.3.0"
#: Categories whose every turn has a user message and ground-truth calls.
CATEGORIES = ("multi_turn_base", "multi_turn_long_context", "multi_turn_miss_param")
Split = Literal["train", "dev", "test"]
#: Default split sizes (tasks): small enough for 2-core CPU machines.
SPLIT_SIZES: dict[str, int] = {"train": 20, "dev": 10, "test": 20}
#: ``sizes="full"``: every task of the category, 40 / 20 / 40 percent.
FULL_FRACTIONS: dict[str, float] = {"train": 0.4, "dev": 0.2, "test": 0.4}
#: BFCL's cap on model steps per turn (``MAXIMUM_STEP_LIMIT``): past it the task fails.
MAX_STEPS_PER_TURN = 20

_GLOBALS_LOCK = threading.Lock()


class BfclNotInstalled(ImportError):
    """bfcl-eval is not installed."""


def _bfcl() -> Any:
    try:
        import bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils as utils
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BfclNotInstalled(f"BFCL tasks need bfcl-eval: {BFCL_INSTALL_HINT}") from exc
    return utils


def bfcl_available() -> bool:
    """Whether bfcl-eval can be imported."""
    try:
        _bfcl()
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class BfclTask:
    """One BFCL multi-turn task.

    Attributes:
        id: BFCL's id (``multi_turn_base_17``).
        turns: The user's message for each turn.
        ground_truth: BFCL's ground-truth calls per turn (``"cd(folder='document')"``).
        entry: The raw BFCL entry (``initial_config``, ``involved_classes``, ``function``).
    """

    id: str
    turns: tuple[str, ...]
    ground_truth: tuple[tuple[str, ...], ...]
    entry: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def functions(self) -> list[dict[str, Any]]:
        """BFCL's function docs of the task's API classes."""
        return list(self.entry["function"])


@lru_cache(maxsize=4)
def _load(category: str) -> dict[str, BfclTask]:
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; allowed: {list(CATEGORIES)}")
    _bfcl()
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    answers = {a["id"]: a["ground_truth"] for a in load_ground_truth_entry(category)}
    tasks: dict[str, BfclTask] = {}
    for entry in load_dataset_entry(category):
        turns = tuple(
            "\n".join(str(m["content"]) for m in turn if m.get("role") == "user")
            for turn in entry["question"]
        )
        truth = tuple(tuple(calls) for calls in answers[entry["id"]])
        tasks[entry["id"]] = BfclTask(entry["id"], turns, truth, entry)
    return tasks


def load_tasks(category: str = "multi_turn_base") -> list[BfclTask]:
    """All tasks of a BFCL multi-turn category, in BFCL's order.

    Raises:
        ValueError: Unknown category (the message lists the allowed ones).
        BfclNotInstalled: bfcl-eval is missing.
    """
    return list(_load(category).values())


def get_task(task_id: str) -> BfclTask:
    """One task by id (the category is the id without its number)."""
    return _load(task_id.rsplit("_", 1)[0])[task_id]


def split_ids(
    split: Split,
    *,
    category: str = "multi_turn_base",
    sizes: dict[str, int] | Literal["full"] | None = None,
) -> list[str]:
    """Task ids of a split: tasks ordered by sha256 of their id, then cut train | dev | test.

    The order does not depend on BFCL's file order, so the splits are stable across versions
    that add tasks only where the hash puts them.

    Args:
        split: ``"train"``, ``"dev"`` or ``"test"``.
        category: The BFCL category.
        sizes: Tasks per split (default `SPLIT_SIZES`, 20 / 10 / 20), or ``"full"`` for every
            task (40 / 20 / 40 percent).

    Raises:
        ValueError: Unknown split, or sizes that exceed the category.
    """
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; allowed: {list(SPLIT_SIZES)}")
    ids = sorted(_load(category), key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    if sizes == "full":
        n_train = round(len(ids) * FULL_FRACTIONS["train"])
        n_dev = round(len(ids) * FULL_FRACTIONS["dev"])
        bounds = {"train": (0, n_train), "dev": (n_train, n_train + n_dev)}
        bounds["test"] = (n_train + n_dev, len(ids))
    else:
        n = dict(SPLIT_SIZES if sizes is None else sizes)
        if sum(n.values()) > len(ids):
            raise ValueError(f"split sizes {n} exceed the {len(ids)} tasks of {category}")
        bounds = {"train": (0, n["train"]), "dev": (n["train"], n["train"] + n["dev"])}
        start = n["train"] + n["dev"]
        bounds["test"] = (start, start + n["test"])
    lo, hi = bounds[split]
    return ids[lo:hi]


# ---------------------------------------------------------------------------- execution


def call_string(name: str, args: dict[str, Any]) -> str:
    """A tool call in BFCL's decoded form (its ``convert_to_function_call``): ``f(a='x',b=1)``."""
    return f"{name}({','.join(f'{k}={v!r}' for k, v in args.items())})"


def parse_call(call: str) -> tuple[str, list[Any], dict[str, Any]]:
    """``"f('a', b=1)"`` -> ``("f", ["a"], {"b": 1})`` (literal arguments only)."""
    node = ast.parse(call.strip(), mode="eval").body
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise ValueError(f"not a plain function call: {call!r}")
    args = [ast.literal_eval(a) for a in node.args]
    kwargs = {str(k.arg): ast.literal_eval(k.value) for k in node.keywords}
    return node.func.id, args, kwargs


def _run_name() -> str:
    return f"hera_{uuid.uuid4().hex}"


def _forget(prefix: str) -> None:
    """Drop the instances BFCL cached under ``prefix`` in its module globals."""
    g = vars(_bfcl())
    with _GLOBALS_LOCK:
        for key in [k for k in g if k.startswith(prefix)]:
            g.pop(key, None)


def execute(task: BfclTask, calls: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """Run ``calls`` in order on fresh API instances of ``task`` (BFCL's own executor).

    Returns:
        ``(results, instances)``: one result string per call (errors as BFCL words them) and
        the instances by class name, in their final state.
    """
    utils = _bfcl()
    name = _run_name()
    try:
        results, instances = utils.execute_multi_turn_func_call(
            list(calls),
            task.entry["initial_config"],
            task.entry["involved_classes"],
            name,
            task.id,
            long_context="long_context" in task.id,
        )
    finally:
        _forget(name)
    return list(results), dict(instances)


def _ai_calls(message: AIMessage) -> list[tuple[str, str]]:
    return [
        (str(tc.get("id") or ""), call_string(tc["name"], tc["args"])) for tc in message.tool_calls
    ]


def calls_before(messages: Sequence[BaseMessage], tool_call_id: str) -> list[str]:
    """The calls executed in a thread before the call ``tool_call_id``, in execution order.

    Earlier steps' calls count when they were answered (a ``ToolMessage``); calls of the same
    step that precede this one count whether or not their answer is in yet (parallel calls run
    concurrently but are checked as if sequential, as BFCL executes them).
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    out: list[str] = []
    for m in messages:
        if not isinstance(m, AIMessage) or not m.tool_calls:
            continue
        calls = _ai_calls(m)
        ids = [i for i, _ in calls]
        if tool_call_id in ids:
            return out + [c for _, c in calls[: ids.index(tool_call_id)]]
        out.extend(c for i, c in calls if i in answered)
    return out


def _openapi(schema: Any) -> Any:
    """BFCL's parameter types (``dict``, ``float``, ``tuple``, ...) as JSON-schema types."""
    from bfcl_eval.constants.type_mappings import GORILLA_TO_OPENAPI

    if isinstance(schema, dict):
        out = {k: _openapi(v) for k, v in schema.items() if k != "properties"}
        if isinstance(schema.get("type"), str):
            out["type"] = GORILLA_TO_OPENAPI.get(schema["type"], schema["type"])
        if isinstance(schema.get("properties"), dict):
            out["properties"] = {k: _openapi(v) for k, v in schema["properties"].items()}
        return out
    if isinstance(schema, list):
        return [_openapi(v) for v in schema]
    return schema


def _tool(task: BfclTask, doc: dict[str, Any]) -> BaseTool:
    from langchain.tools import ToolRuntime

    name = str(doc["name"])

    def run(runtime: ToolRuntime, **kwargs: Any) -> str:
        messages = list((runtime.state or {}).get("messages") or [])
        prior = calls_before(messages, str(runtime.tool_call_id or ""))
        results, _ = execute(task, [*prior, call_string(name, kwargs)])
        return results[-1]

    run.__annotations__["runtime"] = ToolRuntime
    params = _openapi(doc["parameters"])
    params["type"] = "object"
    return StructuredTool.from_function(
        func=run, name=name, description=str(doc["description"]), args_schema=params,
        infer_schema=False,
    )  # fmt: skip


def make_tools(task: BfclTask) -> list[BaseTool]:
    """One tool per function of the task's API classes (BFCL's docs; JSON-schema types).

    Each call replays the thread's earlier calls on fresh instances and then runs, so the
    tools hold no state of their own and are safe to share between threads of the same task.
    """
    return [_tool(task, doc) for doc in task.functions]


# ---------------------------------------------------------------------------- scoring


def _turns(messages: Sequence[BaseMessage]) -> Iterator[list[BaseMessage]]:
    turn: list[BaseMessage] | None = None
    for m in messages:
        if isinstance(m, HumanMessage):
            if turn is not None:
                yield turn
            turn = []
        elif turn is not None:
            turn.append(m)
    if turn is not None:
        yield turn


def decoded_turns(messages: Sequence[BaseMessage]) -> list[list[list[str]]]:
    """The agent's calls per turn and step, as BFCL's checker reads them.

    Turns start at each user message; a step is one AI message's tool calls.
    """
    return [
        [[c for _, c in _ai_calls(m)] for m in turn if isinstance(m, AIMessage) and m.tool_calls]
        for turn in _turns(messages)
    ]


def check(task: BfclTask, decoded: Sequence[Sequence[Sequence[str]]]) -> dict[str, Any]:
    """BFCL's ``multi_turn_checker`` on ``decoded`` (as many turns as it holds).

    Returns:
        The checker's verdict (``valid``, and ``error_type`` / ``error_message`` when invalid).
    """
    _bfcl()
    from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

    n = len(decoded)
    entry = copy.deepcopy(task.entry)
    name = _run_name()
    try:
        verdict = multi_turn_checker(
            [[list(step) for step in turn] for turn in decoded],
            [list(t) for t in task.ground_truth[:n]],
            entry,
            task.id.rsplit("_", 1)[0],
            name,
        )
    except AssertionError as exc:  # the checker asserts on mismatched instance sets
        verdict = {
            "valid": False,
            "error_type": "multi_turn:checker_assertion",
            "error_message": str(exc),
        }
    finally:
        _forget(name)
    return {k: v for k, v in verdict.items() if k in ("valid", "error_type", "error_message")}


def score_task(
    task: BfclTask, decoded: Sequence[Sequence[Sequence[str]]], *, forced_quit: bool = False
) -> dict[str, Any]:
    """Per-turn and per-task scores by BFCL's checker.

    Turn ``k`` is valid when the checker accepts turns ``0..k`` (the state after turn ``k``
    depends on every earlier turn, so a turn after a failed one counts as failed). The task is
    valid when every turn is, as BFCL scores it; ``forced_quit`` (a turn ran past
    `MAX_STEPS_PER_TURN`) fails the task as BFCL does.

    Returns:
        ``{"valid", "turns": [bool per turn], "turn_accuracy", "error_type", "error_message"}``.
    """
    n = len(task.ground_truth)
    padded = [list(decoded[i]) if i < len(decoded) else [] for i in range(n)]
    turns: list[bool] = []
    error: dict[str, Any] = {}
    for k in range(n):
        verdict = check(task, padded[: k + 1])
        if not verdict["valid"]:
            error = verdict
            break
        turns.append(True)
    turns += [False] * (n - len(turns))
    valid = all(turns) and not forced_quit
    if forced_quit and not error:
        error = {"error_type": "multi_turn:force_quit", "error_message": "step limit reached"}
    return {
        "valid": valid,
        "turns": turns,
        "turn_accuracy": sum(turns) / n if n else 0.0,
        "error_type": error.get("error_type"),
        "error_message": str(error.get("error_message") or "")[:300] or None,
    }


def tools_json(task: BfclTask) -> str:
    """The task's tool schemas as JSON (what a cloud prompt carries besides the messages)."""
    return json.dumps(
        [{"name": d["name"], "parameters": _openapi(d["parameters"])} for d in task.functions]
    )


_FENCE = re.compile(r"```(?:json|python)?\s*(.*?)```", re.DOTALL)


def text_tool_calls(text: str) -> list[dict[str, Any]]:
    """Tool calls a model wrote as JSON in its text instead of in ``tool_calls``.

    Small models served without a matching tool-call parser often answer with a fenced JSON
    object (``{"name": ..., "arguments": {...}}``) or a list of them. This reads those (fenced or
    bare, ``arguments`` or ``parameters``); anything else gives ``[]``. A benchmark that uses it
    must say so: BFCL's own handlers would score such a reply as no call.
    """
    chunks = _FENCE.findall(text) or [text]
    calls: list[dict[str, Any]] = []
    for chunk in chunks:
        try:
            value = json.loads(chunk.strip())
        except ValueError:
            continue
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                continue
            args = item.get("arguments", item.get("parameters", {}))
            if isinstance(args, str):
                try:
                    args = json.loads(args)
                except ValueError:
                    continue
            if isinstance(args, dict):
                call_id = f"call_{uuid.uuid4().hex[:24]}"
                calls.append(
                    {"name": item["name"], "args": args, "id": call_id, "type": "tool_call"}
                )
    return calls
