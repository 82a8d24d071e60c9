"""Old home of edge adaptation (LoRA); kept so old imports and ``python -m`` keep working.

Training moved to `langgraph_hera.training.lora` (``hera adapt``); serving an adapter (identity,
checks, the cached merge) to `langgraph_hera.models.adapters`. ``python -m langgraph_hera.adapt
merge ADAPTER --base DIR`` still merges.
"""

from langgraph_hera.models.adapters import (
    ADAPTER_FORMAT,
    ADAPTER_META,
    MERGED_MARKER,
    SHIPPED_ADAPTER,
    AdapterError,
    adapter_info,
    merge_adapter,
    merged_dir_for,
    model_identity,
    shipped_adapter,
)
from langgraph_hera.models.adapters import main as _main
from langgraph_hera.training.lora import (
    AdaptConfig,
    DataStats,
    Example,
    cpu_has_bf16,
    examples_from_steps,
    train_adapter,
)

__all__ = [
    "ADAPTER_FORMAT",
    "ADAPTER_META",
    "MERGED_MARKER",
    "SHIPPED_ADAPTER",
    "AdaptConfig",
    "AdapterError",
    "DataStats",
    "Example",
    "adapter_info",
    "cpu_has_bf16",
    "examples_from_steps",
    "merge_adapter",
    "merged_dir_for",
    "model_identity",
    "shipped_adapter",
    "train_adapter",
]

if __name__ == "__main__":
    raise SystemExit(_main())
