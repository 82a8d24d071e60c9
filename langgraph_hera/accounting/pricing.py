"""List prices and the hybrid-MAS paper's edge energy and KV-cache estimates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelPrice:
    """USD per one million tokens.

    Attributes:
        input: Uncached prompt tokens.
        cached_input: Prompt tokens served from the provider's prompt cache.
        output: Generated tokens.
    """

    input: float
    cached_input: float
    output: float

    def __post_init__(self) -> None:
        for name in ("input", "cached_input", "output"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"ModelPrice.{name} must be >= 0 USD per 1M tokens, got {value!r}")


#: GPT-4o list price used by the hybrid-MAS paper: 2.5 / 1.25 cached / 10 USD per 1M tokens.
GPT_4O = ModelPrice(input=2.5, cached_input=1.25, output=10.0)
FREE = ModelPrice(input=0.0, cached_input=0.0, output=0.0)


@dataclass(frozen=True)
class Pricing:
    """Per-model prices; models not listed cost ``default``.

    Example:
        >>> Pricing().cost("gpt-4o", input_tokens=1_000_000, output_tokens=0)
        2.5
    """

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: {"gpt-4o": GPT_4O})
    default: ModelPrice = GPT_4O

    def price(self, model: str) -> ModelPrice:
        """The price of ``model``: an exact name, else the longest listed prefix, else default."""
        if model in self.prices:
            return self.prices[model]
        prefixes = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(prefixes, key=len)] if prefixes else self.default

    def cost(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
    ) -> float:
        """USD for one call. ``input_tokens`` includes ``cached_tokens``.

        Raises:
            ValueError: On negative counts or more cached than input tokens.
        """
        if min(input_tokens, output_tokens, cached_tokens) < 0:
            raise ValueError(
                "token counts must be >= 0, got "
                f"input={input_tokens}, output={output_tokens}, cached={cached_tokens}"
            )
        if cached_tokens > input_tokens:
            raise ValueError(
                f"cached_tokens ({cached_tokens}) cannot exceed input_tokens ({input_tokens})"
            )
        p = self.price(model)
        uncached = input_tokens - cached_tokens
        return (
            uncached * p.input + cached_tokens * p.cached_input + output_tokens * p.output
        ) / 1e6


def edge_energy_joules(
    n_params: float, prompt_tokens: int, decode_tokens: int, ops_per_joule: float = 1.5e12
) -> float:
    """Edge inference energy, E = 2 N (n_p + n_d) / eta (hybrid-MAS paper, eq. for dense models).

    Args:
        n_params: Model parameters N.
        prompt_tokens: Prefill tokens n_p.
        decode_tokens: Generated tokens n_d.
        ops_per_joule: Hardware efficiency eta (default 1.5e12 ops/J, the paper's example).

    Returns:
        Joules. A comparative estimate: DRAM traffic, runtime overhead and thermals are ignored.

    Example:
        >>> round(edge_energy_joules(4e9, 1000, 200), 2)
        6.4
    """
    if n_params < 0 or prompt_tokens < 0 or decode_tokens < 0 or ops_per_joule <= 0:
        raise ValueError(
            "need n_params, prompt_tokens, decode_tokens >= 0 and ops_per_joule > 0, got "
            f"{n_params}, {prompt_tokens}, {decode_tokens}, {ops_per_joule}"
        )
    return 2.0 * n_params * (prompt_tokens + decode_tokens) / ops_per_joule


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, context_tokens: int, bytes_per_value: int = 2
) -> int:
    """KV-cache size, M = 2 * L * H_kv * d_h * b * C (keys and values, one sequence).

    Example:
        >>> kv_cache_bytes(30, 3, 64, 2048)  # SmolLM2-135M at 2048 tokens, bf16
        47185920
    """
    values = (n_layers, n_kv_heads, head_dim, context_tokens, bytes_per_value)
    if min(values) < 0:
        raise ValueError(f"KV-cache dimensions must be >= 0, got {values}")
    return 2 * n_layers * n_kv_heads * head_dim * bytes_per_value * context_tokens
