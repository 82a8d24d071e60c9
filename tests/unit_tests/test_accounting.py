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
