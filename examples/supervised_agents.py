"""A PEVR and an EVA supervised agent: the edge executes, the cloud verifies every T_v steps.

    python examples/supervised_agents.py --verify-every 4            # starts the embedded edge
    python examples/supervised_agents.py --edge-url http://127.0.0.1:PORT/v1

The executor is the edge model (constrained to the game's valid actions); the supervisor is
`gpt-4o` when OPENAI_API_KEY is set, else the expert stand-in (the game's planner plus transcript
rules -- not a cloud model). Each intervention resets the executor's context to a compact
handoff; the supervision log, the cost and the executor's largest context are printed.
"""

from __future__ import annotations

import argparse
import os

from langgraph_hera import (
    CostLedger,
    HeraContext,
    create_supervised_text_agent,
    edge_chat_model,
)
from langgraph_hera.envs import make_env
from langgraph_hera.models import edge_endpoint
from langgraph_hera.supervision import ExpertSupervisor, expert_plan


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument("--verify-every", type=int, default=4, help="T_v, in executor steps")
    parser.add_argument("--max-steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20000)
    args = parser.parse_args()

    with edge_endpoint(args.edge_url, args.edge_model, max_model_len=8192) as (url, model):
        for mode in ("pevr", "eva"):
            env = make_env("twc")
            if os.environ.get("OPENAI_API_KEY"):
                from langchain_openai import ChatOpenAI

                supervisor = ChatOpenAI(model="gpt-4o", temperature=0, max_retries=0)
            else:
                supervisor = ExpertSupervisor(planner=lambda env=env: expert_plan(env))
            agent = create_supervised_text_agent(
                executor=edge_chat_model(url, model, max_tokens=24),
                supervisor=supervisor,
                mode=mode,
                verify_every=args.verify_every,
            )
            try:
                out = agent.invoke(
                    {"seed": args.seed}, context=HeraContext(env=env, max_steps=args.max_steps)
                )
            finally:
                env.close()
            print(f"--- {mode.upper()} (T_v={args.verify_every}) ---")
            for d in out["supervision_log"]:
                print(
                    f"step {d['step']:>2} {d['action']:<7} on_track={d['on_track']}  {d['reason']}"
                )
            ledger = CostLedger(out["ledger"])
            executor = [e["input_tokens"] for e in ledger.entries if e["target"] == "edge"]
            print(
                f"success={out.get('success')} steps={out['step']} "
                f"supervisor USD={ledger.usd('supervisor'):.4f} "
                f"max executor context={max(executor, default=0)} tokens"
            )


if __name__ == "__main__":
    main()
