"""The ``hera`` argument parser: one sub-command per job, each with its handler."""

from __future__ import annotations

import argparse
import copy
import re

from langgraph_hera.cli._common import (
    ADAPTER_HELP,
    CLOUD_KINDS,
    DEFAULT_LOCAL_LLM_PRICE,
    _postgres_url,
)
from langgraph_hera.cli.calibrate import _calibrate
from langgraph_hera.cli.episodes import _bench, _run, _serve
from langgraph_hera.cli.supervise import _supervise
from langgraph_hera.cli.traces import add_trace_commands
from langgraph_hera.cli.train import _adapt, _profile, _train

#: ``--prompt-layout`` choices (the text-action layouts of `routing.nodes.PromptLayout`).
PROMPT_LAYOUT_CHOICES = ("window", "episode")

DESCRIPTION = (
    "hera serve (edge server), hera run (routed episodes), hera record (trajectories for "
    "training routers), hera bench (policies compared), hera supervise, hera profile, "
    "hera adapt, hera train (a router from game recordings or your agent's traces), "
    "hera calibrate (a router's threshold on dev traces or played dev episodes), hera report "
    "(a router against the baselines on held-out traces)"
)


def _shows_default(action: argparse.Action) -> bool:
    """Whether ``--help`` should append ``(default: X)`` to ``action``'s help: only when X tells
    the reader something the help does not already say.

    Not for ``None`` or an empty list or string (nothing is set), not for the ``False`` of a
    flag (it is off unless given; ``--x/--no-x`` pairs do show theirs), not for positionals
    that must be given, and not when the help already states its default (``auto (default):
    ...``, ``default: a free port``, ``%(default)s``): argparse's
    `ArgumentDefaultsHelpFormatter` appends it to every one of those.
    """
    default = action.default
    if default is None or default is argparse.SUPPRESS:
        return False
    if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
        return False
    if isinstance(default, (str, list, tuple, dict, set, frozenset)) and not default:
        return False
    is_pair = isinstance(action, argparse.BooleanOptionalAction)
    if (default is False or action.nargs == 0) and not is_pair:
        return False
    return re.search(r"\bdefault\b|%\(default\)", action.help or "", re.IGNORECASE) is None


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` with each option's default shown once, where it is informative
    (`_shows_default`); options without a help text show it too."""

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and _shows_default(action):
            action = copy.copy(action)  # the parser's own action keeps its (empty) help
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return f"{text} (default: %(default)s)" if _shows_default(action) else text


def _with_defaults(add_parser):  # type: ignore[no-untyped-def]  # argparse's own signature
    def add(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _DefaultsHelpFormatter)
        return add_parser(*args, **kwargs)

    return add


def build_parser() -> argparse.ArgumentParser:
    """The ``hera`` argument parser (one sub-command per job; each sets its handler)."""
    from langgraph_hera.policies import available_policies
    from langgraph_hera.training.usd import DEFAULT_FAILURE_PENALTY_USD, DEFAULT_STEP_COST_USD

    parser = argparse.ArgumentParser(
        prog="hera", description=DESCRIPTION, formatter_class=_DefaultsHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    # Every sub-command shows its informative defaults in --help, once.
    sub.add_parser = _with_defaults(sub.add_parser)  # type: ignore[method-assign]

    serve = sub.add_parser("serve", help="serve the edge model (OpenAI-compatible) until stopped")
    serve.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
    serve.add_argument("--model", default=None, help="model dir or .gguf (default: embedded)")
    serve.add_argument("--port", type=int, default=None, help="default: a free port")
    serve.add_argument("--adapter", default="auto", help=ADAPTER_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback host"
    )
    serve.set_defaults(func=_serve)

    def episode_args(p: argparse.ArgumentParser, *, fold: str, policy: bool = True) -> None:
        p.add_argument("--suite", default="twc")
        p.add_argument("--fold", default=fold, choices=["train", "dev", "test"])
        p.add_argument("--episodes", type=int, default=5)
        p.add_argument("--offset", type=int, default=0, help="skip this many seeds of the fold")
        if policy:
            p.add_argument(
                "--policy",
                default="hera",
                help=f"one of: {', '.join(available_policies())} (hera: the router shipped "
                "for the served edge and --suite, or the edge's twc router on a suite without one, "
                "unless --policy-arg path=FILE)",
            )
            p.add_argument(
                "--policy-arg", action="append", default=[], metavar="K=V", help="policy keyword"
            )
        p.add_argument(
            "--game-param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="suite difficulty, repeatable (e.g. numLocations=5; the allowed keys per suite "
            "are in langgraph_hera.envs.twx.TWX_PARAMS)",
        )
        p.add_argument("--max-steps", type=int, default=30)
        p.add_argument("--concurrency", type=int, default=2)
        p.add_argument("--edge-url", default=None, help="an OpenAI-compatible /v1 URL")
        p.add_argument("--edge-model", default=None, help="served model name at --edge-url")
        p.add_argument("--edge-timeout", type=float, default=120.0)
        p.add_argument("--backend", default="auto", choices=["auto", "vllm", "llamacpp"])
        p.add_argument(
            "--edge-decoding",
            default="choice",
            choices=["choice", "rank", "free"],
            help="choice: the server constrains the edge to the valid actions; rank: the most "
            "likely valid action (vLLM); free: parse the reply",
        )
        p.add_argument("--model", default=None, help="edge model to serve (default: embedded)")
        p.add_argument("--adapter", default="auto", help=ADAPTER_HELP)
        p.add_argument(
            "--cloud",
            default="auto",
            choices=CLOUD_KINDS,
            help="expert: the game's planner as a chat model (the expert stand-in); openai: "
            "--cloud-model with OPENAI_API_KEY; local-llm: a local LLM standing in for a cloud "
            "model (--cloud-url or --cloud-model-path); auto (default): local-llm when either "
            "is given, openai with --cloud-model and a key, else expert",
        )
        p.add_argument(
            "--cloud-model",
            default=None,
            help="e.g. gpt-4o (needs OPENAI_API_KEY), or the served model name at --cloud-url",
        )
        p.add_argument(
            "--cloud-url",
            default=None,
            help="local-llm: an already-running OpenAI-compatible /v1 URL (with --cloud-model)",
        )
        p.add_argument(
            "--cloud-model-path",
            default=None,
            metavar="FILE.gguf|DIR",
            help="local-llm: serve this model here (EdgeServer, --backend) as the cloud",
        )
        p.add_argument(
            "--cloud-price-as",
            default=None,
            metavar="LISTED_MODEL",
            help=f"local-llm: charge its tokens at this list price (default "
            f"{DEFAULT_LOCAL_LLM_PRICE}; names in accounting.pricing.LIST_PRICES)",
        )
        p.add_argument(
            "--cloud-label",
            default=None,
            help="local-llm: how outputs name it (default: 'local LLM stand-in for a cloud "
            "model (NAME)')",
        )
        p.add_argument("--cloud-max-tokens", type=int, default=32, help="local-llm reply cap")
        p.add_argument("--cloud-max-model-len", type=int, default=4096)
        p.add_argument("--cloud-timeout", type=float, default=600.0)
        p.add_argument(
            "--prompt-layout",
            default="window",
            choices=PROMPT_LAYOUT_CHOICES,
            help="the edge's prompt: window (last 4 steps; the adapted SmolLM2's) or episode "
            "(the whole episode with the game's score after each step, for general LLMs)",
        )
        p.add_argument(
            "--cloud-prompt-layout",
            default="auto",
            choices=("auto", *PROMPT_LAYOUT_CHOICES),
            help="the cloud's prompt; auto: episode for an LLM cloud, else --prompt-layout",
        )
        p.add_argument("--epsilon", type=float, default=0.0, help="stand-in's random-action rate")
        p.add_argument(
            "--proposal-cache",
            default=None,
            metavar="PATH",
            help="SQLite file caching the edge's answers across runs (replay, RL, benches)",
        )
        p.add_argument(
            "--cache-namespace",
            default="",
            help="cache key namespace (default: the served weights' identity)",
        )

    run = sub.add_parser("run", help="routed episodes on a suite; prints the results table")
    episode_args(run, fold="dev")
    run.add_argument(
        "--out",
        default=None,
        help="output dir (default: runs/SUITE-FOLD-POLICY-TIME); an existing one is resumed",
    )
    run.add_argument(
        "--durable",
        nargs="?",
        const=True,
        default=False,
        type=_postgres_url,
        metavar="POSTGRES_URL",
        help="checkpoint every step (OUT/checkpoints.sqlite, or a PostgreSQL database given as "
        "postgresql://USER:PASS@HOST:5432/DB): a killed run resumes mid-episode",
    )
    run.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip always-cloud on the same seeds (played only with the expert stand-in: it "
        "costs no model time), and the saving line it gives",
    )
    run.set_defaults(func=_run, also_edge=False)

    record = sub.add_parser(
        "record",
        help="record trajectories (JSONL + Parquet); --also-edge adds the edge's action everywhere",
    )
    episode_args(record, fold="train")
    record.set_defaults(policy="always-cloud", no_baseline=True)  # recording: no saving line
    record.add_argument(
        "--also-edge",
        action="store_true",
        help="ask the edge model for its action at every state (Hera's replay data)",
    )
    record.add_argument(
        "--out", default=None, help="output dir (default: runs/SUITE-FOLD-POLICY-TIME); resumable"
    )
    record.add_argument(
        "--durable",
        nargs="?",
        const=True,
        default=False,
        type=_postgres_url,
        metavar="POSTGRES_URL",
        help="checkpoint every step (OUT/checkpoints.sqlite, or a PostgreSQL database given as "
        "postgresql://USER:PASS@HOST:5432/DB): a killed run resumes mid-episode",
    )
    record.set_defaults(func=_run)

    bench = sub.add_parser("bench", help="policies side by side vs the oracle frontier")
    episode_args(bench, fold="test", policy=False)
    bench.add_argument(
        "--policies",
        default="random,threshold,task-level",
        help="comma-separated (always-edge and always-cloud are always played; hera: the "
        "router shipped for the served edge and --suite, or the edge's twc router on a suite "
        "without one, unless hera:path=FILE)",
    )
    bench.add_argument("--sweep", action="store_true", help="sweep the tunable policies")
    bench.add_argument(
        "--failure-penalty-usd",
        type=float,
        default=DEFAULT_FAILURE_PENALTY_USD,
        help="P of the report's 'USD per solved task': what an unsolved task costs "
        f"(default {DEFAULT_FAILURE_PENALTY_USD:g} USD)",
    )
    bench.add_argument(
        "--out", default=None, help="bench dir (default: runs/bench-SUITE-FOLD); resumable"
    )
    bench.set_defaults(func=_bench)

    supervise = sub.add_parser(
        "supervise",
        help="supervised agents (PEVR / EVA): an edge executor verified every T_v steps",
    )
    episode_args(supervise, fold="test", policy=False)
    supervise.set_defaults(max_steps=40, concurrency=1)
    supervise.add_argument("--modes", default="pevr", help="comma-separated: pevr, eva")
    supervise.add_argument(
        "--intervals", default="4", help="verification intervals T_v, e.g. 1,2,4,8,16"
    )
    supervise.add_argument(
        "--monolithic",
        action="store_true",
        help="also play the monolithic edge and cloud executors (the baselines)",
    )
    supervise.add_argument(
        "--reverse", default="", help="T_v values of the reverse-role check (edge supervisor)"
    )
    supervise.add_argument(
        "--no-summary", default="", help="T_v values of EVA without summarisation"
    )
    supervise.add_argument(
        "--trigger",
        default=None,
        metavar="POLICY[:K=V...]",
        help="a policy deciding when to verify, e.g. threshold:scorer=stuck:threshold=0.7",
    )
    supervise.add_argument(
        "--executor-history",
        default="messages",
        choices=["messages", "since-reset"],
        help="the executor's context since its last reset: a chat, or one message",
    )
    supervise.add_argument(
        "--max-model-len",
        type=int,
        default=8192,
        help="edge context (the executor's context grows between resets)",
    )
    supervise.add_argument(
        "--out", default=None, help="output dir (default: runs/supervise-SUITE-FOLD); resumable"
    )
    supervise.set_defaults(func=_supervise)

    prof = sub.add_parser(
        "profile", help="profile train tasks for the HERA scheduler (edge/cloud choice trees)"
    )
    episode_args(prof, fold="train", policy=False)
    prof.add_argument("--depth", type=int, default=3, help="depth of each choice tree")
    prof.add_argument("--request-steps", type=int, default=15, help="all-edge/all-cloud cap")
    prof.add_argument(
        "--embedder",
        default="sentence-transformers/all-MiniLM-L6-v2",
        help="SBERT model id, or hashed-<dim>",
    )
    prof.add_argument("--out", required=True, help="scheduler file (.npz)")
    prof.set_defaults(func=_profile)

    adapt = sub.add_parser(
        "adapt", help="LoRA-adapt the edge model to recorded cloud trajectories (train seeds)"
    )
    adapt.add_argument(
        "--data", action="append", required=True, help="a run dir or steps file (repeatable)"
    )
    adapt.add_argument("--out", required=True, help="adapter directory (resumes a checkpoint)")
    adapt.add_argument(
        "--base",
        default=None,
        help="base model: a Hugging Face dir or a .gguf file (converted once, as `hera serve "
        "--model` does) (default: the embedded SmolLM2)",
    )
    adapt.add_argument("--steps", type=int, default=60)
    adapt.add_argument("--batch-size", type=int, default=8)
    adapt.add_argument("--lr", type=float, default=1e-3)
    adapt.add_argument("--rank", type=int, default=8)
    adapt.add_argument("--max-len", type=int, default=640)
    adapt.add_argument("--top-layers", type=int, default=10, help="0: adapt every layer")
    adapt.add_argument("--threads", type=int, default=None)
    adapt.add_argument("--save-every", type=int, default=10, help="checkpoint every N steps")
    adapt.add_argument(
        "--bf16",
        default="auto",
        choices=["auto", "on", "off"],
        help="bfloat16 compute (auto: when the CPU has bf16 instructions)",
    )
    adapt.add_argument("--seed", type=int, default=0)
    adapt.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda or cuda:N; auto: the GPU when torch sees one (default: auto)",
    )
    adapt.set_defaults(func=_adapt)

    train = sub.add_parser(
        "train", help="train the Hera step router: imitation, then cost-aware RL rounds"
    )
    episode_args(train, fold="train", policy=False)
    train.add_argument(
        "--data", action="append", default=[], help="`hera record --also-edge` run(s)"
    )
    train.add_argument("--dev-data", action="append", default=[], help="dev run(s) to calibrate")
    train.add_argument("--out", required=True, help="router file (.npz)")
    train.add_argument(
        "--target-cloud-share",
        type=float,
        default=None,
        help="calibrate the threshold (open loop) to send this share of the dev states to the "
        "cloud (default: the share of states labelled cloud); `hera calibrate --thresholds` "
        "chooses it on played dev episodes instead",
    )
    train.add_argument("--rounds", type=int, default=0, help="RL rounds (0: imitation only)")
    train.add_argument("--lam", type=float, default=0.05, help="price of a cloud call (success)")
    train.add_argument("--explore", type=float, default=0.2, help="decision flip rate")
    train.add_argument("--repeats", type=int, default=2, help="rollouts per seed per round")
    train.add_argument(
        "--rl-weight", type=float, default=1.0, help="sample weight of the RL rounds' states"
    )
    train.add_argument(
        "--rollout-dir", default=None, help="where the RL rollouts go (default: next to --out)"
    )
    train.add_argument(
        "--labels",
        default="replay",
        choices=["replay", "agree"],
        help="replay: the edge may act where its action costs nothing (replayed with the "
        "cloud's expert continuing); agree: where it equals the cloud's (the paper's stage 1)",
    )
    train.add_argument(
        "--step-cost", type=float, default=0.01, help="price of one step (replay labels)"
    )
    train.add_argument(
        "--objective",
        default="usd",
        choices=["usd", "steps"],
        help="replay labels priced in dollars (usd, default: - lam_usd x model USD - "
        "step_cost_usd x steps - failure_penalty_usd x unsolved, each cloud call at its "
        "state's token cost) or in success units (steps: --lam, --step-cost; the labels "
        "before issue 21)",
    )
    train.add_argument("--lam-usd", type=float, default=1.0, help="weight of a USD spent")
    train.add_argument(
        "--step-cost-usd", type=float, default=DEFAULT_STEP_COST_USD, help="USD per step"
    )
    train.add_argument(
        "--failure-penalty-usd",
        type=float,
        default=DEFAULT_FAILURE_PENALTY_USD,
        help=f"USD an unsolved task costs (default {DEFAULT_FAILURE_PENALTY_USD:g})",
    )
    train.add_argument(
        "--edge-usd-per-call",
        type=float,
        default=0.0,
        help="USD of one edge call (default 0: the edge's hardware is already paid for)",
    )
    train.add_argument(
        "--target-cloud-usd-per-episode",
        type=float,
        default=None,
        help="calibrate to a USD budget: the dev states' cloud calls cost at most this per "
        "dev episode",
    )
    train.add_argument(
        "--text-fields",
        default="edge_action,last_action+edge_action",
        help="comma-separated texts to embed (parts: task, observation, last_action, "
        "edge_action; join parts with '+')",
    )
    train.add_argument(
        "--edge-features",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="features of the edge's proposal (edge-first routing); --no-edge-features "
        "routes before the edge is asked (drop edge_action from --text-fields too)",
    )
    train.add_argument(
        "--edge-history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="features: does the edge's proposal repeat an earlier action or undo the last",
    )
    train.add_argument(
        "--edge-margin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="features: how far the edge's proposal was ahead of its runner-up, in nats (off "
        "unless given; needs recordings whose proposals carry edge_margin: choice or rank "
        "decoding)",
    )
    train.add_argument("--embedder", default="hashed", help="hashed or a MiniLM model id")
    train.add_argument("--hash-dim", type=int, default=128)
    train.add_argument("--hidden", type=int, default=16)
    train.add_argument(
        "--edge-id",
        default=None,
        help="edge model/adapter id stored in the file (default: --edge-model with --edge-url)",
    )
    train.set_defaults(func=_train)
    add_trace_commands(sub, train)
    # `hera calibrate` (made with the --traces commands) also plays dev episodes: closed loop.
    cal = sub.choices["calibrate"]
    episode_args(cal, fold="dev", policy=False)
    cal.set_defaults(episodes=20, func=_calibrate)
    (fold,) = (a for a in cal._actions if a.dest == "fold")
    fold.help = "closed loop: train or dev (test is refused: never tune on test)"
    cal.add_argument(
        "--policy-arg",
        action="append",
        default=[],
        metavar="path=ROUTER.npz",
        help="closed loop: the router file (as hera bench's hera:path=...)",
    )
    cal.add_argument(
        "--thresholds",
        default=None,
        metavar="T1,T2,...",
        help="closed loop: thresholds to play against always-cloud on the fold's episodes, "
        "e.g. 0.2,0.3,0.4,0.5,0.6 (each in [0, 1])",
    )
    cal.add_argument(
        "--min-success-ratio",
        type=float,
        default=0.95,
        help="closed loop: keep at least this share of always-cloud's success, in (0, 1]; the "
        "cheapest threshold that does (least cloud USD) is chosen",
    )
    cal.add_argument(
        "--bench-dir",
        default=None,
        help="closed loop: the episodes' directory, resumable (default: "
        "runs/calibrate-SUITE-FOLD-ROUTER-HASH)",
    )
    return parser
