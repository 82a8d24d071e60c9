import pytest
from langchain_core.messages import AIMessage

from langgraph_hera import CostLedger, ModelPrice, Pricing
from langgraph_hera.accounting import GPT_4O, edge_energy_joules, entry_from_message, kv_cache_bytes


def test_energy_matches_paper_worked_example() -> None:
    # Hybrid-MAS paper: 4B model, 1000 prompt + 200 generated tokens, eta = 1.5e12 ops/J -> 6.4 J.
    assert edge_energy_joules(4e9, 1000, 200, 1.5e12) == pytest.approx(6.4)


def test_kv_cache_formula() -> None:
    # 2 * L * H_kv * d_h * b * C
    assert kv_cache_bytes(36, 8, 128, 1000, 2) == 2 * 36 * 8 * 128 * 2 * 1000
    assert kv_cache_bytes(36, 8, 128, 0) == 0
    with pytest.raises(ValueError, match="KV-cache"):
        kv_cache_bytes(-1, 8, 128, 10)


def test_gpt4o_default_prices() -> None:
    p = Pricing()
    assert p.price("gpt-4o") == GPT_4O == ModelPrice(2.5, 1.25, 10.0)
    assert p.price("gpt-4o-2024-08-06") == GPT_4O  # prefix match
    cost = p.cost("gpt-4o", input_tokens=1_000_000, cached_tokens=400_000, output_tokens=100_000)
    assert cost == pytest.approx(0.6 * 2.5 + 0.4 * 1.25 + 0.1 * 10)


def test_pricing_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="cached_tokens"):
        Pricing().cost("gpt-4o", input_tokens=10, cached_tokens=11, output_tokens=0)
    with pytest.raises(ValueError, match=">= 0"):
        Pricing().cost("gpt-4o", input_tokens=-1, output_tokens=0)
    with pytest.raises(ValueError, match="ModelPrice.input"):
        ModelPrice(-1, 0, 0)


def _msg(n_in: int, n_out: int, cached: int = 0, model: str = "gpt-4o") -> AIMessage:
    return AIMessage(
        "x",
        usage_metadata={
            "input_tokens": n_in,
            "output_tokens": n_out,
            "total_tokens": n_in + n_out,
            "input_token_details": {"cache_read": cached},
        },
        response_metadata={"model_name": model},
    )


def test_ledger_entries_and_summary() -> None:
    cloud = entry_from_message(_msg(1000, 100, cached=200), step=0, target="cloud", latency_ms=5)
    edge = entry_from_message(_msg(500, 20, model="smol"), step=1, target="edge", latency_ms=3)
    failed = entry_from_message(None, step=2, target="edge", latency_ms=1, error="boom")
    assert cloud["usd"] == pytest.approx((800 * 2.5 + 200 * 1.25 + 100 * 10) / 1e6)
    assert cloud["energy_j"] == 0.0
    assert edge["usd"] == 0.0 and edge["energy_j"] > 0
    assert failed["ok"] is False and failed["error"] == "boom"
    ledger = CostLedger([cloud, edge, failed])
    s = ledger.summary()
    assert s["cloud_calls"] == 1 and s["edge_calls"] == 2
    assert s["cloud_share"] == pytest.approx(1 / 3)
    assert s["failed_calls"] == 1
    assert ledger.tokens("cloud") == {"input": 1000, "cached": 200, "output": 100}
    assert ledger.cloud_usd == pytest.approx(cloud["usd"])


def test_ledger_max_context_and_kv_estimate() -> None:
    from langgraph_hera import CostLedger

    def entry(target: str, n_in: int, n_out: int) -> dict:
        return {
            "step": 0,
            "target": target,
            "model": "m",
            "input_tokens": n_in,
            "cached_tokens": 0,
            "output_tokens": n_out,
            "usd": 0.0,
            "energy_j": 0.0,
            "latency_ms": 1.0,
            "ok": True,
        }

    ledger = CostLedger(
        [entry("edge", 100, 5), entry("edge", 2040, 8), entry("supervisor", 9000, 50)]
    )
    assert ledger.max_context_tokens() == 2048
    assert ledger.max_context_tokens("supervisor") == 9050
    # SmolLM2-135M at 2048 tokens, bf16 (the formula's worked example).
    assert ledger.kv_cache_bytes(30, 3, 64) == 47185920


# -- prices by the right name (issue 18) --------------------------------------------------------


def _bare(content: str = "x", model: str | None = None, **kwargs: object) -> AIMessage:
    """A reply without usage_metadata, optionally naming its model."""
    meta = {"model_name": model} if model else {}
    return AIMessage(content, response_metadata=meta, **kwargs)


def test_configured_alias_is_priced_by_the_reported_model_not_the_gpt4o_default() -> None:
    reply = _msg(1000, 100, model="Qwen/Qwen2.5-72B-Instruct")
    e = entry_from_message(reply, step=0, target="cloud", latency_ms=1, model="my-alias")
    # Qwen2.5-72B-Instruct at 0.13 in / 0.40 out USD per 1M: (1000 * 0.13 + 100 * 0.40) / 1e6.
    assert e["usd"] == pytest.approx(170 / 1e6)
    assert e["price_source"] == "table" and e["priced_as"] == "qwen2.5-72b-instruct"
    assert e["model"] == "Qwen/Qwen2.5-72B-Instruct"


def test_configured_name_is_priced_before_the_reported_one() -> None:
    # An Azure-style deployment reports a snapshot of another model than the one configured.
    reply = _msg(1_000_000, 0, model="gpt-4o-2024-11-20")
    e = entry_from_message(reply, step=0, target="cloud", latency_ms=1, model="gpt-4o-mini")
    assert e["usd"] == pytest.approx(0.15) and e["priced_as"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # not gpt-4o: "-mini" is another model
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),  # not gpt-4.1
        ("o3-mini", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),  # Vertex AI spelling
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("openai/GPT-4o-mini", "gpt-4o-mini"),  # router prefix, any case
        ("Qwen/Qwen2.5-72B-Instruct", "qwen2.5-72b-instruct"),
        ("gpt-4o-audio-preview", None),  # "-audio" is not a version: unlisted
        ("Qwen/Qwen2.5-72B-Instruct-Turbo", None),  # another variant at another price
        ("chatgpt-4o-latest", None),
    ],
)
def test_listed_name_matches_only_up_to_a_version_suffix(name: str, listed: str | None) -> None:
    match = Pricing().resolve(name)
    assert match.priced_as == listed
    assert match.source == ("table" if listed else "unknown")


def test_snapshot_is_priced_as_its_own_model() -> None:
    # gpt-4o-mini list price 0.15 in / 0.60 out: 1M each -> 0.75 USD (gpt-4o would be 12.5).
    assert Pricing().cost(
        "gpt-4o-mini-2024-07-18", input_tokens=1_000_000, output_tokens=1_000_000
    ) == pytest.approx(0.75)


def test_unknown_model_is_marked_and_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    reply = _msg(1000, 100, model="acme-llm-9000")
    with caplog.at_level("WARNING", logger="langgraph_hera.accounting.pricing"):
        e = entry_from_message(reply, step=0, target="cloud", latency_ms=1, model="acme-prod")
        entry_from_message(reply, step=1, target="cloud", latency_ms=1, model="acme-prod")
    # Still charged (at GPT-4o: budgets err on the safe side), but marked.
    assert e["usd"] == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)
    assert e["price_source"] == "unknown" and "priced_as" not in e
    warnings = [r for r in caplog.records if "acme-llm-9000" in r.getMessage()]
    assert len(warnings) == 1 and "'acme-prod'" in warnings[0].getMessage()  # once per name


def test_explicit_default_still_prices_unknown_models_marked_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mine = ModelPrice(input=1.0, cached_input=0.5, output=2.0)
    pricing = Pricing(prices={"house-model": ModelPrice(0.1, 0.1, 0.1)}, default=mine)
    with caplog.at_level("WARNING"):
        e = entry_from_message(
            _msg(1000, 10, model="other"), step=0, target="cloud", latency_ms=1, pricing=pricing
        )
    assert e["usd"] == pytest.approx((1000 * 1.0 + 10 * 2.0) / 1e6)
    assert e["price_source"] == "default" and not caplog.records
    # User prices replace the shipped table: gpt-4o is now unlisted, so at the default.
    assert pricing.resolve("gpt-4o").source == "default"
    assert pricing.resolve("House-Model-2025-01-01").priced_as == "house-model"


def test_edge_entries_carry_no_price_source() -> None:
    e = entry_from_message(_msg(10, 2, model="smol"), step=0, target="edge", latency_ms=1)
    assert "price_source" not in e and e["usd"] == 0.0


# -- a cloud reply without usage is never free (issue 18) ---------------------------------------


@pytest.fixture
def chars_per_4(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """No tiktoken BPE file on disk: counts fall back to chars/4."""
    from langgraph_hera.accounting import _tokens

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    _tokens.offline_encoding.cache_clear()
    yield
    _tokens.offline_encoding.cache_clear()


def _prompt() -> list:
    from langchain_core.messages import HumanMessage, SystemMessage

    return [SystemMessage("abcd" * 10), HumanMessage("abcdefgh")]


def test_reply_without_usage_is_counted_from_prompt_and_reply(chars_per_4: None) -> None:
    reply = _bare("hello world!")
    e = entry_from_message(
        reply, step=0, target="cloud", latency_ms=1, model="gpt-4o", prompt=_prompt()
    )
    # chars/4, rounded up, plus OpenAI's framing (3 per message, 3 to prime the reply):
    # 3 + [3 + "system" 2 + 40 chars 10] + [3 + "human" 2 + 8 chars 2] = 25 in; 12 chars = 3 out.
    assert (e["input_tokens"], e["output_tokens"], e["cached_tokens"]) == (25, 3, 0)
    assert e["usd"] == pytest.approx((25 * 2.5 + 3 * 10) / 1e6) and e["usd"] > 0
    assert e["usage_estimated"] is True and e["usage_estimator"] == "chars/4"


def test_tool_calls_and_reasoning_count_as_output(chars_per_4: None) -> None:
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1", "type": "tool_call"}
    reply = _bare("", tool_calls=[call], additional_kwargs={"reasoning_content": "abcdefgh"})
    e = entry_from_message(reply, step=0, target="cloud", latency_ms=1, model="gpt-4o")
    # "get_weather" 11 chars -> 3, '{"city": "Paris"}' 17 -> 5, reasoning 8 -> 2; no prompt: 0 in.
    assert (e["input_tokens"], e["output_tokens"]) == (0, 10)
    # Truncated arguments (finish_reason "length") land in invalid_tool_calls: still billed.
    cut = AIMessage(
        "",
        invalid_tool_calls=[
            {"name": "get_weather", "args": '{"city": "Par', "id": "c2", "error": None}
        ],
    )
    # 3 + '{"city": "Par' 13 chars -> 4.
    assert entry_from_message(cut, step=0, target="cloud", latency_ms=1)["output_tokens"] == 7


def test_all_zero_usage_is_no_usage_and_edge_energy_uses_the_estimate(chars_per_4: None) -> None:
    zero = AIMessage(
        "abcdefgh", usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    )
    e = entry_from_message(zero, step=0, target="edge", latency_ms=1, prompt=_prompt())
    assert (e["input_tokens"], e["output_tokens"]) == (25, 2) and e["usage_estimated"]
    assert e["energy_j"] == pytest.approx(edge_energy_joules(134.5e6, 25, 2))


def test_reported_usage_wins_over_the_prompt() -> None:
    e = entry_from_message(_msg(1000, 100), step=0, target="cloud", latency_ms=1, prompt=_prompt())
    assert (e["input_tokens"], e["output_tokens"]) == (1000, 100)
    assert "usage_estimated" not in e and "usage_estimator" not in e
    failed = entry_from_message(None, step=0, target="cloud", latency_ms=1, error="boom")
    assert failed["input_tokens"] == 0 and "usage_estimated" not in failed


def test_tiktoken_is_used_when_its_encoding_loads_offline(monkeypatch) -> None:
    from langgraph_hera.accounting import _tokens

    class Words:  # stands in for a tiktoken Encoding: one token per word
        def encode(self, text: str, disallowed_special: object = ()) -> list[str]:
            return text.split()

    seen: list[str] = []
    monkeypatch.setattr(_tokens, "offline_encoding", lambda name: seen.append(name) or Words())
    e = entry_from_message(
        _bare("one two three"), step=0, target="cloud", latency_ms=1, model="gpt-4"
    )
    assert e["output_tokens"] == 3 and e["usage_estimator"] == "tiktoken:cl100k_base"
    assert seen == ["cl100k_base"]  # gpt-4's own encoding; unknown models get o200k_base
    assert _tokens.encoding_name("my-alias", None) == "o200k_base"


def test_a_corrupt_bpe_file_is_never_replaced_by_a_download(tmp_path, monkeypatch) -> None:
    import hashlib

    import tiktoken

    from langgraph_hera.accounting import _tokens

    url, _ = _tokens._BPE_FILES["o200k_base"]
    (tmp_path / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"not the real file")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))

    def no_download(name: str) -> None:
        raise AssertionError(f"tiktoken.get_encoding({name!r}) would hit the network")

    monkeypatch.setattr(tiktoken, "get_encoding", no_download)
    _tokens.offline_encoding.cache_clear()
    try:
        assert _tokens.offline_encoding("o200k_base") is None
        assert _tokens.TokenCounter("gpt-4o").method == "chars/4"
    finally:
        _tokens.offline_encoding.cache_clear()


# -- the cache-hit marker lives in accounting (issue 18) ----------------------------------------


def test_cache_hit_marker_is_defined_in_accounting_and_reexported() -> None:
    import ast
    import inspect

    from langgraph_hera.accounting import _markers, ledger
    from langgraph_hera.models import cache

    assert cache.is_cache_hit is _markers.is_cache_hit
    assert cache.CACHE_HIT_KEY == _markers.CACHE_HIT_KEY == "hera_cache_hit"
    imported = {
        node.module
        for node in ast.walk(ast.parse(inspect.getsource(ledger)))
        if isinstance(node, ast.ImportFrom)
    }
    assert not any(m and m.startswith("langgraph_hera.models") for m in imported)
    hit = _markers.mark_cache_hit(_msg(100, 10, model="smol"))
    assert _markers.is_cache_hit(hit)
    e = entry_from_message(hit, step=0, target="edge", latency_ms=1)
    assert e["cache_hit"] is True and e["energy_j"] == 0.0


def test_ledger_for_turn_selects_one_run_of_the_thread() -> None:
    from langgraph_hera.accounting import CostLedger

    def entry(turn: str, target: str, usd: float) -> dict:
        return {
            "step": 0, "target": target, "model": "m", "input_tokens": 1, "cached_tokens": 0,
            "output_tokens": 1, "usd": usd, "energy_j": 0.0, "latency_ms": 1.0, "ok": True,
            "turn": turn,
        }  # fmt: skip

    entries = [entry("a", "cloud", 0.5), entry("b", "cloud", 0.25), entry("b", "edge", 0)]
    ledger = CostLedger(entries)
    assert ledger.cloud_calls == 2
    assert ledger.for_turn().cloud_usd == 0.25 and len(ledger.for_turn()) == 2
    assert ledger.for_turn("a").cloud_usd == 0.5
    assert len(ledger.for_turn("missing")) == 0


def test_estimate_call_usd_prices_the_prompt_and_the_expected_output() -> None:
    from langchain_core.messages import HumanMessage

    from langgraph_hera.accounting.ledger import estimate_call_usd
    from langgraph_hera.accounting.pricing import LIST_PRICES, Pricing

    prompt = [HumanMessage("word " * 400)]
    short = estimate_call_usd(prompt, model="gpt-4o", output_tokens=0)
    longer = estimate_call_usd(prompt, model="gpt-4o", output_tokens=1000)
    price = LIST_PRICES["gpt-4o"]
    assert longer - short == pytest.approx(1000 * price.output / 1e6)
    assert short > 0 and estimate_call_usd([], model="gpt-4o", output_tokens=0) == 0.0
    free = Pricing(prices={}, default=ModelPrice(0, 0, 0))
    assert estimate_call_usd(prompt, model="x", pricing=free) == 0.0
    with pytest.raises(ValueError, match="output_tokens must be >= 0, got -1"):
        estimate_call_usd(prompt, model="gpt-4o", output_tokens=-1)
