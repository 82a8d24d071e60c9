"""A routed agent checkpointed in PostgreSQL: any worker can continue any thread.

    python examples/served_agent_postgres.py                # a throwaway local PostgreSQL
    python examples/served_agent_postgres.py --postgres-url postgresql://USER:PASS@HOST:5432/DB
    python examples/served_agent_postgres.py --edge-url http://127.0.0.1:PORT/v1  # your edge

LangGraph Server runs stateless workers over Postgres: the next turn of a thread may run on
another worker, so nothing about a run or a thread may live in process memory. Here a
`create_agent` agent with `HeraRoutingMiddleware` answers three turns of one thread through a
`PostgresSaver`; then a new agent on a **new connection** continues the thread and finds the
thread's route log, ledger and messages in the checkpoint. Without ``--postgres-url`` a
throwaway PostgreSQL cluster is started in a temp dir on a loopback port (as the tests do) and
removed afterwards; where PostgreSQL is not installed, the example says so and skips.
Needs ``pip install 'langgraph-hera[postgres]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from langchain.agents import create_agent
from langchain_core.tools import tool

from langgraph_hera import CostLedger, HeraContext, edge_chat_model
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import RandomPolicy
from langgraph_hera.routing.middleware import HeraRoutingMiddleware

TURNS = ["What is 2 + 3? Use the add tool.", "And 40 + 2?", "Add 8 and 9."]
THREAD = "pg-demo"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _initdb() -> Path | None:
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])],
    )
    if debian:
        return debian[-1]
    found = shutil.which("initdb")
    return Path(found) if found else None


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A fresh PostgreSQL cluster (trust auth, loopback, temp dir); its URL, or ``None`` with
    the reason printed when it cannot run here. Stopped and removed on exit."""
    initdb = _initdb()
    if initdb is None:
        print(
            "skipped: PostgreSQL is not installed (apt-get install -y postgresql) and no "
            "--postgres-url was given"
        )
        yield None
        return
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="hera-pg-example-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            print("skipped: running as root and there is no 'postgres' user to run PostgreSQL as")
            yield None
            return
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        as_user = [runuser, "-u", "postgres", "--"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, log = root / "data", root / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    bindir = initdb.parent
    try:
        done = run(str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        if done.returncode != 0:
            print(f"skipped: initdb failed: {(done.stderr or done.stdout)[-400:]}")
            yield None
            return
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        done = run(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"
        )
        if done.returncode != 0:
            tail = log.read_text()[-400:] if log.exists() else done.stderr
            print(f"skipped: PostgreSQL did not start: {tail}")
            yield None
            return
        print(f"started a throwaway PostgreSQL on 127.0.0.1:{port}")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_agent(edge, cloud, checkpointer):  # noqa: ANN001, ANN201 - a compiled agent
    """The same agent on every worker: only the checkpointer holds the thread."""
    return create_agent(
        cloud,
        tools=[add],
        context_schema=HeraContext,
        checkpointer=checkpointer,
        middleware=[
            HeraRoutingMiddleware(edge=edge, cloud=cloud, policy=RandomPolicy(0.5, seed=1))
        ],
    )


def converse(url: str, edge, cloud) -> None:  # noqa: ANN001
    from langgraph.checkpoint.postgres import PostgresSaver

    config = {"configurable": {"thread_id": THREAD}, "recursion_limit": 12}
    context = HeraContext(max_cloud_calls=2, budget_scope="thread")  # caps count the thread
    with PostgresSaver.from_conn_string(url) as saver:  # worker 1
        saver.setup()  # creates the tables on first use
        saver.delete_thread(THREAD)  # a fresh demo thread on a database you gave
        agent = build_agent(edge, cloud, saver)
        for n, text in enumerate(TURNS, 1):
            out = agent.invoke({"messages": [("user", text)]}, config, context=context)
            targets = [d["target"] for d in out["route_log"]]
            print(f"turn {n}: {str(out['messages'][-1].text)[:50]!r} route_log={targets}")
        before = (len(out["messages"]), len(out["route_log"]), len(out["ledger"]))
    with PostgresSaver.from_conn_string(url) as saver:  # worker 2: a new connection
        agent = build_agent(edge, cloud, saver)
        stored = agent.get_state(config).values
        found = (len(stored["messages"]), len(stored["route_log"]), len(stored["ledger"]))
        assert found == before, (found, before)
        out = agent.invoke(
            {"messages": [("user", "Thanks! One more: 1 + 1?")]}, config, context=context
        )
        assert out["messages"][: before[0]] == stored["messages"]
        assert len(out["route_log"]) > before[1]
        print(
            f"continued on a new connection: {found[0]} messages, {found[1]} decisions and "
            f"{found[2]} ledger entries read back; now {len(out['route_log'])} decisions"
        )
        print(f"thread: {CostLedger(out['ledger']).summary()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--postgres-url", default=None, help="default: start a throwaway local PostgreSQL"
    )
    args = parser.parse_args()

    missing = [
        m
        for m in ("psycopg", "langgraph.checkpoint.postgres")
        if importlib.util.find_spec(m.split(".")[0]) is None
        or (m != "psycopg" and importlib.util.find_spec(m) is None)
    ]
    if missing:
        print(f"skipped: {missing} not installed (pip install 'langgraph-hera[postgres]')")
        return
    with contextlib.ExitStack() as stack:
        url = args.postgres_url or stack.enter_context(throwaway_postgres())
        if url is None:
            return
        edge_url, model_name = stack.enter_context(edge_endpoint(args.edge_url, args.edge_model))
        edge = edge_chat_model(edge_url, model_name, max_tokens=128)
        if os.environ.get("OPENAI_API_KEY"):
            from langchain_openai import ChatOpenAI

            cloud = ChatOpenAI(model="gpt-4o", temperature=0)
        else:  # no key: the edge plays both sides
            cloud = edge_chat_model(edge_url, model_name, max_tokens=128)
        converse(url, edge, cloud)


if __name__ == "__main__":
    sys.exit(main())
