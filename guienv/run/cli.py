"""``guienv`` command line: ``eval``, ``report``, ``score``, ``synth-export``, ``appium``, ``tiny-model``.

The subcommands' own modules are imported here; agents and model code (torch, transformers) only
when a subcommand runs, so ``guienv --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from emulator.android import add_emulator_args
from emulator.appium_server import add_appium_args
from guienv.config import check_pixel_range
from guienv.run.command import run_command
from guienv.run.evaluate import BENCHMARKS, EvalConfig, check_config, default_template, rebuild_report, run_eval
from guienv.run.score import add_score_args, score_main
from guienv.run.train import add_train_args
from rewards.scoring import summary_table

__all__ = ["build_parser", "main", "make_agent"]


def make_agent(name: str, args: argparse.Namespace, template: str):
    """The agent ``name`` built from ``guienv eval`` arguments."""
    from agents.baselines import AGENTS, TEXT_AGENTS

    if name in AGENTS:
        return AGENTS[name](seed=args.seed) if name == "random" else AGENTS[name]()
    if name in TEXT_AGENTS:
        return TEXT_AGENTS[name]()
    if not args.model:
        raise SystemExit(f"guienv eval: error: --agent {name} needs --model (a hub id or folder for qwen, "
                         "the served model name for api, a local folder for text)")
    if name == "text":  # a text LM on a text env (agents.policy_agent)
        from agents.policy_agent import TextAgent, TextAgentConfig

        return TextAgent(TextAgentConfig(model=args.model, template=template, max_new_tokens=args.max_new_tokens,
                                         temperature=args.temperature, device=args.device))
    pixels = {k: v for k, v in (("min_pixels", args.min_pixels), ("max_pixels", args.max_pixels)) if v is not None}
    if name == "qwen":
        from agents.qwen import QwenAgent, QwenAgentConfig

        return QwenAgent(QwenAgentConfig(
            model=args.model, template=template, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
            dtype=args.dtype, device=args.device, frame=args.frame, cache=getattr(args, "cache", "dynamic"),
            compile=getattr(args, "compile", False), logprobs=False, **pixels,
        ))
    from agents.api import ApiAgent, ApiAgentConfig

    return ApiAgent(ApiAgentConfig(
        base_url=args.api_base, model=args.model, api_key_env=args.api_key_env, template=template,
        frame=args.frame or "resized", max_concurrency=args.concurrency or args.batch_size, timeout_s=args.timeout,
        retries=args.retries, temperature=args.temperature, max_tokens=args.max_new_tokens,
        extra_body=_extra_body(args.extra_body), **pixels,
    ))


def _extra_body(text: str | None) -> dict:
    """--extra-body: a JSON object of more request fields (e.g. vLLM's structured_outputs)."""
    if text is None:
        return {}
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"guienv eval: error: --extra-body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SystemExit(f"guienv eval: error: --extra-body must be a JSON object, got {type(body).__name__}")
    return body


def _reference_pixels(args: argparse.Namespace, benchmark: str) -> None:
    """With neither --min-pixels nor --max-pixels given, the benchmark's published evaluation
    settings (:func:`guienv.frames.resolve_pixels`), if it has any; a bound given by hand leaves
    the other to the agent's own default."""
    from guienv.frames import reference_resize, resolve_pixels

    if reference_resize(benchmark) is not None and args.min_pixels is None and args.max_pixels is None:
        args.min_pixels, args.max_pixels, source = resolve_pixels(benchmark)
        print(f"resize: min_pixels={args.min_pixels} max_pixels={args.max_pixels} ({source})")


def _history_config(args: argparse.Namespace):
    """``EvalConfig.history`` from the --history-* options (None when none is given)."""
    from guienv.history import HistoryConfig

    given = {k: v for k, v in (("screens", args.history_screens), ("actions", args.history_actions),
                               ("observations", args.history_observations)) if v is not None}
    if not given and not args.no_feedback:
        return None
    try:
        return HistoryConfig(**given, feedback=not args.no_feedback)
    except ValueError as exc:
        raise SystemExit(f"guienv eval: error: {exc}") from None


def _cmd_eval(args: argparse.Namespace) -> int:
    cfg = EvalConfig(
        benchmark=args.benchmark,
        data=args.data,
        agent=args.agent[0],
        limit=args.limit,
        episodes=args.episodes,
        seed=args.seed,
        out=args.out,
        **({"tasks": tuple(args.tasks)} if args.tasks else {}),
        server_url=args.server_url,
        batch_size=args.batch_size,
        mode=args.mode,
        protocol=args.protocol,
        history_images=args.history_images,
        history=_history_config(args),
        report_episodes=args.report_episodes,
        on_error=args.on_error,
    )
    check_config(cfg)
    check_pixel_range(args.min_pixels, args.max_pixels, ("--min-pixels", "--max-pixels"))
    template = args.template or default_template(cfg.benchmark, cfg.mode)
    _reference_pixels(args, cfg.benchmark)
    for name in args.agent:
        agent = make_agent(name, args, template)
        if args.engine != "transformers":
            from guienv.run.evaluate import use_engine

            vllm = {"max_model_len": args.vllm_max_model_len} if args.vllm_max_model_len else {}
            engine = use_engine(agent, args.engine, args.model, vllm)
            print(f"engine: {engine.name} (started in {getattr(engine, 'init_s', 0.0):.1f} s)")
        out = args.out if len(args.agent) == 1 else f"{args.out}/{name}"
        try:
            metrics = run_eval(replace(cfg, agent=name, out=out), agent)
        finally:
            close = getattr(agent, "close", None)
            if callable(close):
                close()
        print(_table(metrics))
        published = _published_table(metrics)
        if published:
            print(published)
        print(f"metrics: {out}/metrics.json  predictions: {out}/predictions.jsonl  steps: {out}/steps.jsonl")
        print(f"report: {out}/report.html\n")
    return 0


def _published_table(metrics: dict) -> str | None:
    pub = metrics.get("published")
    if not pub:
        return None
    bench = "androidcontrol" if metrics["benchmark"] == "androidcontrol" else "screenspot"
    protocol = metrics.get("protocol", "point-in-box")
    return summary_table({"benchmark": bench, "protocol": protocol, **pub})


def _cmd_report(args: argparse.Namespace) -> int:
    extra = {} if args.episodes is None else {"max_episodes": args.episodes}
    print(rebuild_report(args.dir, images=not args.no_images, **extra))
    if not os.path.exists(os.path.join(args.dir, "metrics.json")):
        print(f"guienv report: {args.dir} has no metrics.json (an interrupted eval): the report shows the finished "
              "episodes, summaries recomputed from predictions.jsonl and steps.jsonl", file=sys.stderr)
    return 0


def _table(metrics: dict) -> str:
    rows = [("overall", metrics["overall"])]
    for key, groups in metrics.items():
        if key.startswith("by_"):
            rows += [(f"{key[3:]}={g}", m) for g, m in groups.items()]
    width = max(len(r[0]) for r in rows)
    lines = [f"{metrics['benchmark']} / agent={metrics['agent']}", f"{'slice':<{width}}  episodes  success  return"]
    for name, m in rows:
        lines.append(f"{name:<{width}}  {m['episodes']:>8}  {m['success_rate']:>7.3f}  {m['mean_return']:>6.3f}")
    return "\n".join(lines)


def _cmd_synth_export(args: argparse.Namespace) -> int:
    from tasks.synthapp import SynthConfig, export_screenspot

    path = export_screenspot(args.n, args.out, SynthConfig(), seed=args.seed)
    print(json.dumps({"written": str(path), "samples": args.n}))
    return 0


def _cmd_tiny_model(args: argparse.Namespace) -> int:
    from agents.tiny_model import build_tiny_model, build_tiny_text_model

    if bool(args.path) == bool(args.text):
        raise ValueError("give PATH (the VL model) or --text PATH (the text model), one of them")
    print(build_tiny_text_model(args.text) if args.text else build_tiny_model(args.path))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guienv", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("eval", help="evaluate an agent on a benchmark (resumable, batched; writes report.html)")
    e.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="synthapp")
    e.add_argument("--data", help="benchmark file or directory (not needed for synthapp); alfworld: a game folder or a folder of "
                   "them; mdp: a spec name (chain, ...) or YAML file (default chain)")
    e.add_argument("--agent", nargs="+", choices=["oracle", "random", "mean-click", "expert", "qwen", "api", "text"],
                   default=["oracle"],
                   help="one or more agents (labelled in the output): baselines, a local Qwen2.5-VL/Qwen2-VL "
                        "(qwen) or a model behind an OpenAI-compatible server (api; on alfworld/mdp it sends the text "
                        "prompts only, so a served text model works); for alfworld the engine planner "
                        "(expert) or a local text LM (text)")
    e.add_argument("--limit", type=int, help="evaluate at most N episodes")
    e.add_argument("--episodes", type=int, default=100,
                   help="synthapp: number of generated tasks; miniwob: episodes per task")
    e.add_argument("--tasks", nargs="+", help="miniwob: task names (default: the five with a DOM oracle)")
    e.add_argument("--server-url", help="miniwob: a running Appium server (default: start one for the run)")
    e.add_argument("--mode", help="androidcontrol: low | high (default low); synthapp: app | grounding (default app)")
    e.add_argument("--protocol", help="androidcontrol step matching: qwen (default, = qwen-content-direction), infigui, os-atlas, plain, gui-r1")
    e.add_argument("--history-images", type=int, default=0,
                   help="androidcontrol: previous screens shown with each step (as data.history_images in training)")
    e.add_argument("--history-screens", type=int,
                   help="synthapp (app mode), miniwob: previous screenshots shown with each step (last K)")
    e.add_argument("--history-actions", type=int,
                   help="synthapp (app mode), miniwob: earlier actions shown as numbered lines (last M; default 8 "
                        "once a --history-* option is given)")
    e.add_argument("--history-observations", type=int,
                   help="alfworld, mdp: recent (observation, action) pairs shown (default 2, verl-agent's history_length)")
    e.add_argument("--no-feedback", action="store_true",
                   help="multi-step views: do not tell the model its last action was invalid")
    e.add_argument("--batch-size", type=int, default=1, help="episodes stepped in lockstep, one agent call per step")
    e.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="screenspot/androidcontrol: a bad record stops the run (raise) or is skipped and counted (skip)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="runs/eval")
    e.add_argument("--report-episodes", type=int, default=24, help="episodes shown in report.html (failures first)")
    m = e.add_argument_group("model agents (qwen, api)")
    m.add_argument("--model", help="qwen: hub id or local folder; api: the served model name")
    m.add_argument("--template", help="prompt template (guienv.prompts; default: the benchmark's)")
    m.add_argument("--frame", choices=["pixel", "normalized", "grid1000", "resized"],
                   help="the model's coordinate frame (qwen: from the checkpoint's family; api: resized)")
    m.add_argument("--min-pixels", type=int, help="smart-resize min_pixels of the resized frame")
    m.add_argument("--max-pixels", type=int, help="smart-resize max_pixels of the resized frame (default: the benchmark's reference "
                   "evaluation, see guienv.frames.REFERENCE_RESIZE; else 1280*28*28)")
    m.add_argument("--max-new-tokens", type=int, default=256)
    m.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    m.add_argument("--engine", choices=["transformers", "vllm"], default="transformers",
                   help="text: who generates (vllm: a vLLM engine in this process, agents.vllm_engine)")
    m.add_argument("--vllm-max-model-len", type=int, help="--engine vllm: the engine's max_model_len (default 2048)")
    m.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float16", "float32"], help="qwen")
    m.add_argument("--device", help="qwen: cuda, cpu, ... (default: cuda if available)")
    m.add_argument("--cache", default="dynamic", choices=["dynamic", "static"], help="qwen: KV cache kind (agents.decoding)")
    m.add_argument("--compile", action="store_true", help="qwen: torch.compile the decode step (needs --cache static; for GPUs)")
    m.add_argument("--api-base", default="http://127.0.0.1:8000/v1", help="api: OpenAI-compatible base URL")
    m.add_argument("--api-key-env", help="api: environment variable holding the API key (none: no key sent)")
    m.add_argument("--concurrency", type=int, help="api: requests in flight (default: --batch-size)")
    m.add_argument("--timeout", type=float, default=120.0, help="api: seconds per request attempt")
    m.add_argument("--retries", type=int, default=3, help="api: retries on errors, timeouts, 5xx, 429")
    m.add_argument("--extra-body", metavar="JSON",
                   help="api: a JSON object of more request fields merged into every request, e.g. vLLM's "
                        "'{\"structured_outputs\": {\"choice\": [\"<action>a0</action>\"]}}'")
    e.set_defaults(func=_cmd_eval)

    sc = sub.add_parser("score", help="score a predictions JSONL (made anywhere) on AndroidControl or ScreenSpot")
    add_score_args(sc)
    sc.set_defaults(func=score_main)

    s = sub.add_parser("synth-export", help="write synthetic grounding tasks in ScreenSpot-v2 format")
    s.add_argument("out")
    s.add_argument("-n", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_synth_export)

    add_train_args(sub)

    add_appium_args(sub)
    add_emulator_args(sub)

    r = sub.add_parser("report", help="re-render DIR/report.html from an eval run's files")
    r.add_argument("dir")
    r.add_argument("--episodes", type=int, help="episodes shown (default: the run's --report-episodes)")
    r.add_argument("--no-images", action="store_true", help="do not rebuild the env to replay screenshots")
    r.set_defaults(func=_cmd_report)

    t = sub.add_parser("tiny-model", help="build a tiny random-init Qwen2.5-VL (HF folder) for offline tests/demos; "
                                          "--text PATH: a tiny text Qwen2 for the text envs instead")
    t.add_argument("path", nargs="?", help="folder of the Qwen2.5-VL model")
    t.add_argument("--text", metavar="PATH", help="build the tiny text model (Qwen2ForCausalLM) in PATH instead")
    t.set_defaults(func=_cmd_tiny_model)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand. Bad input (a DataError naming the file/record/field, a bad argument) and a
    checkpoint that cannot be saved print one line ``guienv <command>: <error>`` and return 2
    (``GUIENV_DEBUG=1`` shows the traceback instead)."""
    args = build_parser().parse_args(argv)
    return run_command(f"guienv {args.command}", args)


if __name__ == "__main__":
    sys.exit(main())
