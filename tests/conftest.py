"""Shared test helpers: a scripted fake chat model, a tiny deterministic text environment, and
recordings of real games with a scripted edge."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_hera.envs.base import EnvStep
from langgraph_hera.policies import RoutingPolicy


class ScriptedChat(BaseChatModel):
    """Replies from a script (strings or AIMessages); can raise; counts its calls."""

    script: list[Any] = []
    name_: str = "scripted"
    fail: bool = False
    calls: int = 0
    tokens_in: int = 11
    tokens_out: int = 3

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls += 1
        if self.fail:
            raise ConnectionError(f"{self.name_} is down")
        item = self.script[(self.calls - 1) % len(self.script)] if self.script else "ok"
        if callable(item):
            item = item(messages)
        msg = item if isinstance(item, AIMessage) else AIMessage(str(item))
        msg = msg.model_copy(
            update={
                "usage_metadata": {
                    "input_tokens": self.tokens_in,
                    "output_tokens": self.tokens_out,
                    "total_tokens": self.tokens_in + self.tokens_out,
                },
                "response_metadata": {**msg.response_metadata, "model_name": self.name_},
            }
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChat:
        return self


class CostlyChat(ScriptedChat):
    """A scripted model whose prompt size (hence price) changes from call to call."""

    sizes: list[int] = [100]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.tokens_in = self.sizes[self.calls % len(self.sizes)]
        return super()._generate(messages, stop, run_manager, **kwargs)


class TargetsPolicy(RoutingPolicy):
    """Routes by a given sequence of targets (cycled by step)."""

    name = "scripted-targets"

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets

    def score(self, route_input: Any) -> float:
        return 1.0 if self.targets[route_input.step % len(self.targets)] == "cloud" else 0.0


class CounterEnv:
    """A tiny deterministic text game: reach `goal` by typing 'inc'; 'dec' goes back."""

    suite = "counter"

    def __init__(self, goal: int = 3, fail_on: str | None = None) -> None:
        self.goal = goal
        self.fail_on = fail_on
        self.value = 0
        self.closed = False

    def _obs(self, text: str, reward: float = 0.0) -> EnvStep:
        done = self.value >= self.goal
        return EnvStep(
            task=f"reach {self.goal}",
            observation=text,
            valid_actions=["dec", "inc", "look"],
            reward=reward,
            score=float(self.value),
            done=done,
            success=done,
        )

    def reset(self, seed: int) -> EnvStep:
        self.value = 0
        return self._obs("value is 0")

    def step(self, action: str) -> EnvStep:
        if self.fail_on and action == self.fail_on:
            raise RuntimeError("env crashed")
        if action == "inc":
            self.value += 1
        elif action == "dec":
            self.value -= 1
        return self._obs(f"value is {self.value}", reward=1.0 if action == "inc" else 0.0)

    def expert_action(self) -> str:
        self.last_plan = ["inc"] * max(self.goal - self.value, 1)
        return "inc"

    def close(self) -> None:
        self.closed = True


class KeepOpen:
    """A shared (module-scoped) env whose close() is a no-op: the runner closes the envs it is
    given, and the module's JVM must stay up."""

    def __init__(self, env: Any) -> None:
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def close(self) -> None:
        pass


@pytest.fixture
def scripted() -> Callable[..., ScriptedChat]:
    def make(*script: Any, name: str = "scripted", fail: bool = False) -> ScriptedChat:
        return ScriptedChat(script=list(script), name_=name, fail=fail)

    return make


def write_wasteful_edge_recording(path: Path, seeds: Sequence[int], suite: str = "twc") -> None:
    """An ``--also-edge``-shaped recording of real games: the expert (stand-in cloud) acts; the
    "edge" proposes the expert's action at even steps and wastes a step (``look around``) at
    odd ones. Needs TextWorldExpress."""
    from langgraph_hera.envs import make_env

    rows: list[dict[str, Any]] = []
    env = make_env(suite)
    try:
        for seed in seeds:
            step = env.reset(seed)
            for t in range(30):
                expert = env.expert_action()
                edge = "look around" if t % 2 else expert
                rows.append({
                    "suite": suite, "seed": seed, "policy": "always-cloud", "step": t,
                    "task": step.task, "observation": step.observation,
                    "valid_actions": step.valid_actions, "target": "cloud", "action": expert,
                    "action_valid": True, "cloud_action": expert, "edge_action": edge,
                    "edge_valid": True, "edge_logprob": -0.5, "agree": edge == expert,
                    "episode_success": True,
                })  # fmt: skip
                step = env.step(expert)
                rows[-1]["next_observation"] = step.observation
                if step.done:
                    break
    finally:
        env.close()
    path.mkdir(parents=True, exist_ok=True)
    (path / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _initdb() -> Path | None:
    """PostgreSQL's ``initdb``: Debian's newest ``/usr/lib/postgresql/N/bin``, else on PATH."""
    import re
    import shutil

    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])],
    )
    if debian:
        return debian[-1]
    found = shutil.which("initdb")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real PostgreSQL server for the session: a fresh cluster in a temp dir, trust auth, on a
    free loopback port. Yields its base URL (``postgresql://postgres@127.0.0.1:PORT``).

    Skips (with the reason) where PostgreSQL or the Python driver is not installed, or the
    cluster does not start. As root, the server runs as the ``postgres`` user (PostgreSQL refuses
    to run as root).
    """
    import os
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    if importlib.util.find_spec("psycopg") is None or (
        importlib.util.find_spec("langgraph.checkpoint.postgres") is None
    ):
        pytest.skip("pip install 'langgraph-hera[postgres]' (langgraph-checkpoint-postgres)")
    initdb = _initdb()
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    as_user: list[str] = []
    # Not under pytest's tmp dir: that is private to the user running pytest (0700).
    root = Path(tempfile.mkdtemp(prefix="hera-pg-"))
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data, log = root / "data", root / "server.log"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bindir = initdb.parent

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)

    done = run(str(initdb), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {(done.stderr or done.stdout)[-800:]}")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    done = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start")
    if done.returncode != 0:
        tail = log.read_text()[-800:] if log.exists() else done.stderr
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {tail}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's PostgreSQL server; its connection URL."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}?sslmode=disable"
