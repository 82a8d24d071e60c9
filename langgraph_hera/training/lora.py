"""Cloud-to-edge adaptation: LoRA fine-tuning of the edge model on recorded cloud trajectories.

The edge learns to answer each recorded prompt with the cloud's action (supervised
fine-tuning on train seeds only; loss on the answer tokens). Training runs on the CPU or a
GPU (`AdaptConfig.device`) with `peft`, checkpoints every few steps and resumes from the last
checkpoint. Serving the adapter (identity checks, the cached merge into the base weights) is
`langgraph_hera.models.adapters`.

Example:
    >>> examples, stats = examples_from_steps(["runs/record-twc-train"])  # doctest: +SKIP
    >>> summary = train_adapter(embedded_model_dir(), examples, "adapters/twc")  # doctest: +SKIP
    >>> merged = merge_adapter("adapters/twc")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph_hera.envs.base import FOLD_SEEDS
from langgraph_hera.models.adapters import (
    ADAPTER_FORMAT,
    ADAPTER_META,
    AdapterError,
    model_identity,
)
from langgraph_hera.routing.nodes import ACTION_SYSTEM_PROMPT
from langgraph_hera.secrets import get_logger
from langgraph_hera.training.trajectory import iter_steps

logger = get_logger(__name__)

_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Example:
    """One supervised pair: the user prompt of a step and the cloud's action there."""

    prompt: str
    action: str
    seed: int
    step: int
    suite: str = ""


@dataclass
class AdaptConfig:
    """LoRA fine-tuning settings.

    Args:
        rank: LoRA rank r.
        alpha: LoRA alpha (scale alpha / r).
        dropout: LoRA dropout.
        lr: Peak learning rate (AdamW; linear warm-up over 5% of steps, then cosine decay).
        steps: Optimiser steps.
        batch_size: Examples per step.
        max_len: Longest tokenised example kept (longer prompts are cut from the left).
        seed: Shuffling and initialisation seed.
        save_every: Checkpoint every this many steps (and at the end).
        threads: torch CPU threads (default: all cores).
        target_modules: Linear layers that get adapters.
        top_layers: Adapt only the last this many decoder layers (None: all). The frozen
            layers below never change, so their output for every example is computed once
            before training and the optimiser steps run only the adapted layers: on 2 CPU
            cores this is what makes adaptation affordable.
        bf16: Compute in bfloat16 (autocast; the LoRA weights stay fp32). None: on a GPU,
            or when the CPU has native bf16 instructions (AVX512-BF16 / AMX), about 1.5x
            faster there; the served merged model is bf16 too.
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``), or ``"auto"``: the GPU when torch
            sees one, else the CPU. The adapter file is the same either way.
    """

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    lr: float = 1e-3
    steps: int = 120
    batch_size: int = 8
    max_len: int = 768
    seed: int = 0
    save_every: int = 10
    threads: int | None = None
    target_modules: tuple[str, ...] = _TARGETS
    top_layers: int | None = 10
    bf16: bool | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
        for name in ("rank", "alpha", "steps", "batch_size", "max_len", "save_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.top_layers is not None and self.top_layers < 1:
            raise ValueError(f"top_layers must be >= 1 or None, got {self.top_layers!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


@dataclass
class DataStats:
    """What `examples_from_steps` kept and dropped."""

    records: int = 0
    kept: int = 0
    not_train: int = 0
    no_cloud_action: int = 0
    invalid: int = 0
    episodes: int = 0
    seeds: list[int] = field(default_factory=list)


def examples_from_steps(
    paths: Iterable[str | Path], *, folds: Sequence[str] = ("train",)
) -> tuple[list[Example], DataStats]:
    """Supervised pairs from recorded steps: (prompt, cloud action) on the given folds only.

    Steps without a cloud action (edge steps) or whose cloud action was not valid are
    dropped; a step from another fold is dropped and counted (train on train seeds).

    Raises:
        ValueError: Unknown fold, or no usable step at all.
        FileNotFoundError: A path has no trajectory.
    """
    for f in folds:
        if f not in FOLD_SEEDS:
            raise ValueError(f"unknown fold {f!r}; allowed: {list(FOLD_SEEDS)}")
    allowed = [FOLD_SEEDS[f] for f in folds]
    stats = DataStats()
    seen: dict[tuple[str, int, int], Example] = {}
    for path in paths:
        for r in iter_steps(path):
            stats.records += 1
            seed = int(r["seed"])
            if not any(seed in rng for rng in allowed):
                stats.not_train += 1
                continue
            action = r.get("cloud_action")
            if action is None and r.get("target") == "cloud":
                action = r.get("action")
            if not action:
                stats.no_cloud_action += 1
                continue
            if action not in (r.get("valid_actions") or [action]):
                stats.invalid += 1
                continue
            suite = str(r.get("suite", ""))
            seen[(suite, seed, int(r["step"]))] = Example(
                str(r["prompt"]), str(action), seed, int(r["step"]), suite
            )
    examples = [seen[k] for k in sorted(seen)]
    stats.kept = len(examples)
    stats.seeds = sorted({e.seed for e in examples})
    stats.episodes = len({(e.suite, e.seed) for e in examples})
    if not examples:
        raise ValueError(
            f"no usable training steps in {list(map(str, paths))}: {asdict(stats)} "
            "(record cloud trajectories on train seeds first: hera record --fold train)"
        )
    return examples, stats


# -- training --------------------------------------------------------------------------------


def _encode(
    tokenizer: Any, system: str, ex: Example, max_len: int
) -> tuple[list[int], list[int]] | None:
    """Token ids and labels (-100 on the prompt) of one example, prompt cut from the left."""
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": ex.prompt}],
        add_generation_prompt=True,
        tokenize=False,
    )
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(ex.action + "<|im_end|>", add_special_tokens=False)["input_ids"]
    if len(answer_ids) >= max_len:
        return None
    keep = max_len - len(answer_ids)
    prompt_ids = list(prompt_ids)[-keep:]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def _lr_at(step: int, config: AdaptConfig) -> float:
    warm = max(1, int(0.05 * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, config.steps - warm)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_adapter(  # noqa: C901
    base_dir: str | Path,
    examples: Sequence[Example],
    out_dir: str | Path,
    config: AdaptConfig | None = None,
    *,
    on_step: Callable[[int, float], None] | None = None,
    data_note: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter; resumes from ``out_dir/checkpoint`` when it exists.

    Args:
        base_dir: The base model (a Hugging Face directory, e.g. `embedded_model_dir()`).
        examples: Supervised pairs (`examples_from_steps`).
        out_dir: Where the adapter (and its checkpoint) go.
        config: Training settings.
        on_step: Called after every optimiser step with (step, loss).
        data_note: Extra facts about the data, stored in the adapter's metadata.

    Returns:
        The training summary (also stored in ``hera_adapter.json``).

    Raises:
        ImportError: torch / transformers / peft are missing
            (``pip install 'langgraph-hera[training]'``).
        AdapterError: A checkpoint in ``out_dir`` was trained on another base model.
        ValueError: The loss became NaN or infinite (diverged); the last checkpoint stays.
    """
    try:
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"hera adapt needs torch, transformers and peft ({exc}): "
            "pip install 'langgraph-hera[training]'"
        ) from exc

    config = config or AdaptConfig()
    base_dir, out = Path(base_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    base_id = model_identity(base_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [_encode(tokenizer, ACTION_SYSTEM_PROMPT, e, config.max_len) for e in examples]
    data = [x for x in encoded if x is not None]
    if not data:
        raise ValueError(f"no example fits max_len={config.max_len}")
    # Any: the transformers / peft classes differ per step (base, then PEFT-wrapped).
    device = resolve_device(config.device)
    model: Any = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model.to(device)
    n_layers = int(model.config.num_hidden_layers)
    n_frozen = 0
    if config.top_layers is not None and config.top_layers < n_layers:
        n_frozen = n_layers - config.top_layers
    on_gpu = device.startswith("cuda")
    bf16 = (on_gpu or cpu_has_bf16()) if config.bf16 is None else config.bf16
    autocast = lambda: torch.autocast(  # noqa: E731
        "cuda" if on_gpu else "cpu", dtype=torch.bfloat16, enabled=bf16
    )
    t_prefix = time.perf_counter()
    with autocast():
        prefix = _frozen_prefix_states(model, [ids for ids, _ in data], n_frozen, device)
    prefix_s = time.perf_counter() - t_prefix
    start = 0
    state_path = ckpt / "trainer_state.pt"
    if state_path.is_file():
        saved = json.loads((ckpt / ADAPTER_META).read_text())
        if saved.get("base_model") != base_id:
            raise AdapterError(
                f"checkpoint {ckpt} was trained on {saved.get('base_model')!r}, "
                f"not on {base_id!r}; use another --out"
            )
        model = PeftModel.from_pretrained(model, str(ckpt), is_trainable=True).to(device)
        state = torch.load(state_path, weights_only=False, map_location=device)
        start = int(state["step"])
        logger.info("resuming adapter training at step %d from %s", start, ckpt)
    else:
        layers = list(range(n_frozen, n_layers)) if n_frozen else None
        lora = LoraConfig(
            layers_to_transform=layers,
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora).to(device)
        state = None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    _skip_frozen_layers(model.get_base_model(), n_frozen)
    model.train()

    epoch_batches: dict[int, list[list[int]]] = {}
    lengths = [len(ids) for ids, _ in data]

    def batch(step: int) -> list[int]:
        per_epoch = max(1, len(data) // config.batch_size)
        epoch, i = divmod(step, per_epoch)
        if epoch not in epoch_batches:
            epoch_batches[epoch] = _length_bucketed(
                lengths, config.batch_size, random.Random(config.seed * 1000 + epoch)
            )
        return epoch_batches[epoch][i % len(epoch_batches[epoch])]

    meta: dict[str, Any] = {
        "format": ADAPTER_FORMAT,
        "base_model": base_id,
        "config": {**asdict(config), "target_modules": list(config.target_modules)},
        "examples": len(data),
        "data": data_note or {},
    }

    def checkpoint(step: int) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=".checkpoint.tmp-", dir=out))
        model.save_pretrained(str(tmp))
        torch.save({"step": step, "optimizer": opt.state_dict()}, tmp / "trainer_state.pt")
        (tmp / ADAPTER_META).write_text(json.dumps({**meta, "steps_done": step}, indent=1))
        if ckpt.exists():
            shutil.rmtree(ckpt)
        os.rename(tmp, ckpt)

    losses: list[float] = []
    t0 = time.perf_counter()
    for step in range(start, config.steps):
        idx = batch(step)
        seqs = [data[i] for i in idx]
        width = max(len(ids) for ids, _ in seqs)
        hidden = torch.zeros(len(idx), width, prefix[idx[0]].shape[-1], device=device)
        for row, i in enumerate(idx):
            hidden[row, : len(prefix[i])] = prefix[i]
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in seqs], device=device)
        mask = torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in seqs], device=device
        )
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config)
        with autocast():
            loss = _answer_loss(model, hidden, mask, labels)
        if not torch.isfinite(loss):
            raise ValueError(
                f"adapter training diverged: loss {float(loss.detach())} at step {step + 1} of "
                f"{config.steps} (lr {config.lr}, bf16 {bf16}, device {device}); nothing was "
                f"saved over {out}: lower the lr (--lr) or compute in fp32 (--bf16 off)"
            )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, losses[-1])
        if (step + 1) % config.save_every == 0 and step + 1 < config.steps:
            checkpoint(step + 1)
    wall = time.perf_counter() - t0
    meta["train"] = {
        "steps": config.steps,
        "resumed_at": start,
        "wall_s_this_run": round(wall, 1),
        "frozen_prefix_s": round(prefix_s, 1),
        "bf16": bf16,
        "device": device,
        "s_per_step": round(wall / max(1, config.steps - start), 2),
        "final_loss_mean_last10": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4)
        if losses
        else None,
    }
    model.save_pretrained(str(out))
    _to_bf16(out / "adapter_model.safetensors")
    (out / ADAPTER_META).write_text(json.dumps({**meta, "steps_done": config.steps}, indent=1))
    if ckpt.exists():
        shutil.rmtree(ckpt)
    return meta


def resolve_device(device: str) -> str:
    """``device`` with ``"auto"`` resolved: ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Raises:
        ValueError: A GPU was asked for and torch sees none.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for, but torch {torch.__version__} sees no GPU; "
            "allowed here: 'cpu' or 'auto'"
        )
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 instructions (Linux: AVX512-BF16 or AMX-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _frozen_prefix_states(
    model: Any, sequences: Sequence[list[int]], n_frozen: int, device: str = "cpu"
) -> list[Any]:
    """Each sequence's hidden states after the first ``n_frozen`` decoder layers.

    Those layers are frozen, so this is computed once (inference mode, one sequence at a
    time: no padding) instead of at every optimiser step. With ``n_frozen == 0`` these are
    the token embeddings.
    """
    import torch

    inner = model.model
    captured: list[Any] = []

    class _Stop(Exception):
        pass

    def stop(_module: Any, _args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _Stop

    hook = inner.layers[n_frozen - 1].register_forward_hook(stop) if n_frozen else None
    states = []
    try:
        with torch.inference_mode():
            for ids in sequences:
                x = torch.tensor([ids], device=device)
                if hook is None:
                    states.append(inner.embed_tokens(x)[0].float().clone())
                    continue
                try:
                    inner(input_ids=x)
                except _Stop:
                    pass
                states.append(captured.pop()[0].float().clone())
    finally:
        if hook is not None:
            hook.remove()
    return states


def _skip_frozen_layers(base: Any, n_frozen: int) -> None:
    """Replace the first ``n_frozen`` decoder layers by identities (their output is cached)."""
    import torch

    class _Identity(torch.nn.Module):
        def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
            return hidden_states

    for i in range(n_frozen):
        base.model.layers[i] = _Identity()


def _length_bucketed(
    lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[int]]:
    """One epoch of batches: shuffled, then sorted by length within windows of 32 batches,
    so a batch pads little; the batches are shuffled again."""
    order = rng.sample(range(len(lengths)), len(lengths))
    window = batch_size * 32
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches
    rng.shuffle(batches)
    return batches


def _answer_loss(model: Any, prefix: Any, mask: Any, labels: Any) -> Any:
    """Cross-entropy on the answer tokens only, with the LM head applied only there.

    ``prefix`` holds the hidden states after the frozen layers (`_frozen_prefix_states`, padded
    on the right). Skipping the prompt positions in the LM head saves most of the logits
    memory (batch x length x vocabulary) that a plain ``model(..., labels=...)`` would allocate.
    """
    import torch

    base = model.get_base_model()
    hidden = base.model(inputs_embeds=prefix, attention_mask=mask).last_hidden_state
    # Position t predicts token t + 1.
    shifted = labels[:, 1:]
    keep = shifted != -100
    logits = base.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), shifted[keep])


def _to_bf16(path: Path) -> None:
    """Store the adapter weights in bf16 (half the size; merged in fp32 later)."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(torch.bfloat16).contiguous() for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
