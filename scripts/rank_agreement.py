"""Agreement of an edge model (raw or adapted) with the expert, scored without a server.

For each recorded expert state (`hera record --policy always-cloud`), every valid action is
scored by its log-likelihood after the state's prompt (the same scoring as
``edge_decoding="rank"`` on a vLLM server: the sum of the action's token log-probabilities
after the chat template's generation prompt), and the best one is compared with the expert's
action. Runs with plain transformers (+ peft for an adapter) on the CPU or a GPU, so it
measures an adapter where no vLLM runs (a GPU box that trained it, say).

The expert is the offline stand-in (the game's planner), not a cloud model.

Usage:
    python scripts/rank_agreement.py --base DIR --adapter none,ADAPTER_DIR \
        --states runs/i21/expert-twc-dev --max-states 400 --out agreement.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from langgraph_hera.routing.nodes import ACTION_SYSTEM_PROMPT
from langgraph_hera.training.trajectory import iter_steps


def _states(paths: list[str], limit: int, seed: int) -> list[dict[str, Any]]:
    rows = [
        r
        for p in paths
        for r in iter_steps(p)
        if r.get("cloud_action") and r.get("valid_actions") and r.get("prompt")
    ]
    rng = random.Random(seed)
    return rows if len(rows) <= limit else rng.sample(rows, limit)


def _best(model: Any, tok: Any, row: dict[str, Any], device: str) -> str:
    import torch

    text = tok.apply_chat_template(
        [
            {"role": "system", "content": ACTION_SYSTEM_PROMPT},
            {"role": "user", "content": row["prompt"]},
        ],
        add_generation_prompt=True,
        tokenize=False,
    )
    prompt = tok(text, add_special_tokens=False)["input_ids"][-1536:]
    actions = list(row["valid_actions"])
    cands = [tok(a, add_special_tokens=False)["input_ids"] for a in actions]
    width = len(prompt) + max(len(c) for c in cands)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(cands), width), pad, dtype=torch.long)
    mask = torch.zeros((len(cands), width), dtype=torch.long)
    for i, c in enumerate(cands):
        seq = prompt + c
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    logp = torch.log_softmax(logits, dim=-1)
    scores = []
    for i, c in enumerate(cands):
        pos = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(c), device=logp.device)
        scores.append(float(logp[i, pos, torch.tensor(c, device=logp.device)].sum()))
    return actions[max(range(len(actions)), key=scores.__getitem__)]


def main(argv: list[str] | None = None) -> int:
    """Score each adapter on the same states; print and write the agreement table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="base model dir (Hugging Face format)")
    ap.add_argument("--adapter", default="none", help="comma-separated adapter dirs or 'none'")
    ap.add_argument("--states", action="append", required=True, help="expert run dir(s)")
    ap.add_argument("--max-states", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tok = AutoTokenizer.from_pretrained(args.base)
    rows = _states(args.states, args.max_states, args.seed)
    suites = sorted({str(r.get("suite", "")) for r in rows})
    results = []
    for name in args.adapter.split(","):
        model: Any = AutoModelForCausalLM.from_pretrained(args.base, dtype=dtype).to(device)
        if name != "none":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, name).to(device)
        model.eval()
        t0 = time.perf_counter()
        hits: dict[str, list[int]] = {s: [] for s in suites}
        for r in rows:
            hits[str(r.get("suite", ""))].append(
                int(_best(model, tok, r, device) == r["cloud_action"])
            )
        wall = time.perf_counter() - t0
        res = {
            "adapter": name,
            "states": len(rows),
            "agreement": round(sum(map(sum, hits.values())) / max(1, len(rows)), 4),
            "by_suite": {s: round(sum(h) / max(1, len(h)), 4) for s, h in hits.items()},
            "states_by_suite": {s: len(h) for s, h in hits.items()},
            "wall_s": round(wall, 1),
        }
        results.append(res)
        print(json.dumps(res), flush=True)
        del model
    report = {
        "base": str(Path(args.base).name),
        "states_from": args.states,
        "device": device,
        "scoring": "sum of action-token log-probs after the prompt (edge_decoding='rank')",
        "reference": "expert stand-in (the game's planner), not a cloud model",
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
