"""Record cloud trajectories, train a `HeraRouter` on them, and deploy it.

    python examples/train_your_router.py --train 6 --test 2       # starts the embedded edge

1. Record: play train seeds with every step on the cloud, and ask the edge for its own action
   at every state (`also_edge`): where the two agree, the edge would have done.
2. Train: stage 1 of Hera -- a classifier of "needs the cloud" from state features plus the
   edge's proposal, calibrated to a target cloud-step share (`hera train` adds the RL rounds).
3. Deploy: load the saved router as the policy of a routed agent on test seeds.

Offline the cloud is the expert stand-in (the game's planner; not a cloud model). The same
three steps from the command line: `hera record --also-edge`, `hera train`, `hera run --policy
hera --policy-arg path=...`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from langgraph_hera import edge_chat_model
from langgraph_hera.envs import FOLD_SEEDS, ExpertChatModel, make_env
from langgraph_hera.evaluation import EpisodeRunner, iter_steps, summarize
from langgraph_hera.models import edge_endpoint
from langgraph_hera.policies import AlwaysCloud, FeatureSpec, HeraRouter
from langgraph_hera.policies.hera import imitation_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edge-url", default=None, help="default: start the embedded model")
    parser.add_argument("--edge-model", default="smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=6, help="train episodes to record")
    parser.add_argument("--test", type=int, default=2, help="test episodes to play")
    parser.add_argument("--cloud-share", type=float, default=0.6)
    parser.add_argument("--out", default=None, help="working directory (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="hera-router-"))

    with edge_endpoint(args.edge_url, args.edge_model) as (url, model):
        edge = edge_chat_model(url, model, max_tokens=24)

        def expert(env):  # the cloud stand-in for this environment
            return ExpertChatModel(expert=env.expert_action)

        # 1. Record cloud trajectories with the edge's action at every state.
        recorder = EpisodeRunner(
            env_factory=lambda: make_env("twc"),
            edge=edge,
            cloud_factory=expert,
            policy_factory=AlwaysCloud,
            also_edge=True,
            out_dir=work / "record",
            cloud_is_stand_in=True,
        )
        recorder.run(list(FOLD_SEEDS["train"])[: args.train])

        # 2. Train stage 1 on the replayed states and save one small file.
        states, needs_cloud, _ = imitation_dataset(iter_steps(work / "record"))
        spec = FeatureSpec(
            text_fields=("task", "observation", "last_action", "edge_action"),
            embedding_model="hashed-256",
            embedding_dim=256,
            edge=True,
        )
        router = HeraRouter(spec=spec, hidden=16, edge_model=model).fit(states, needs_cloud)
        router.calibrate(states, cloud_share=args.cloud_share)
        path = router.save(work / "router.npz")
        print(f"trained on {len(states)} states ({needs_cloud.mean():.0%} need the cloud): {path}")

        # 3. Deploy: the saved router routes a test episode step by step.
        deployed = EpisodeRunner(
            env_factory=lambda: make_env("twc"),
            edge=edge,
            cloud_factory=expert,
            policy_factory=lambda: HeraRouter(path),
            out_dir=work / "deploy",
            cloud_is_stand_in=True,
        )
        s = summarize(deployed.run(list(FOLD_SEEDS["test"])[: args.test]))
    print(
        f"test: success {s['success']:.0%}, cloud-step share {s['cloud_share']:.0%}, "
        f"cloud USD {s['cloud_usd']:.4f} (expert stand-in), router {s['router_ms_per_step']:.2f} "
        "ms/step"
    )


if __name__ == "__main__":
    main()
