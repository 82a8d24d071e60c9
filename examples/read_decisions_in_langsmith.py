"""Read every routing decision back from LangSmith -- or, offline, from a local recorder.

    python examples/read_decisions_in_langsmith.py            # local recorder, embedded edge
    LANGSMITH_API_KEY=... python examples/read_decisions_in_langsmith.py --langsmith

Each decision is a `route_decision` run (metadata `hera_step`, `hera_target`, `hera_score`,
`hera_threshold`, `hera_policy`, `hera_reason`, `hera_latency_ms`; tag `hera:edge` / `hera:cloud`)
and the model call after it carries the same metadata. In the LangSmith UI, filter runs by
`metadata_key = "hera_target"` or by the tag.
"""

from __future__ import annotations

import argparse

from langchain_core.tracers import LangChainTracer

from langgraph_hera import HeraContext, create_text_agent, edge_chat_model
from langgraph_hera.envs import ExpertChatModel, make_env
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import RandomPolicy
from langgraph_hera.secrets import redacting_langsmith_client
from langgraph_hera.trace_recorder import TraceRecorder

PROJECT = "hera-decisions"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument("--langsmith", action="store_true", help="send to LangSmith itself")
    args = parser.parse_args()

    with edge_endpoint(args.edge_url, args.edge_model) as (url, model), TraceRecorder() as rec:
        # The real LangSmith client; offline it sends to the local recorder. It redacts every
        # run before sending (API keys never reach a trace).
        client = (
            redacting_langsmith_client()
            if args.langsmith
            else redacting_langsmith_client(api_url=rec.endpoint, api_key="local-recorder")
        )
        tracer = LangChainTracer(client=client, project_name=PROJECT)
        env = make_env("twc")
        agent = create_text_agent(
            edge=edge_chat_model(url, model, max_tokens=24),
            cloud=ExpertChatModel(expert=env.expert_action),  # stand-in, not a cloud model
            policy=RandomPolicy(0.5, seed=3),
        )
        try:
            agent.invoke(
                {"seed": 20000},
                context=HeraContext(env=env, max_steps=6),
                config={"callbacks": [tracer], "run_name": "routed_episode"},
            )
        finally:
            env.close()
        tracer.wait_for_futures()
        client.flush()

        if args.langsmith:
            runs = client.list_runs(project_name=PROJECT, filter='eq(name, "route_decision")')
            decisions = [r.extra["metadata"] for r in runs]
        else:
            decisions = [r["extra"]["metadata"] for r in rec.runs("route_decision")]
    decisions.sort(key=lambda m: m["hera_step"])
    for m in decisions:
        print(
            f"step {m['hera_step']}: {m['hera_target']:<5} score={m['hera_score']:.2f} "
            f"policy={m['hera_policy']} ({m['hera_reason']})"
        )
    print(f"{len(decisions)} decisions read back")


if __name__ == "__main__":
    main()
