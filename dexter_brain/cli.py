"""The ``dexter-brain`` command: ``build``, ``generate``, ``train``, ``evaluate``, ``chat``, ``serve`` and ``learn``.

``build_trm_brain.py`` and ``pipelines/train_all_trms.py`` are the same ``build`` and ``train`` commands.

    dexter-brain build --quick
    dexter-brain train --trm memory --data datasets/offline
    dexter-brain chat --models-dir models
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
BUILD_EXAMPLE = """example:
  python build_trm_brain.py --quick
  python build_trm_brain.py --raw ../shared/devdata/api_bank --models-dir /tmp/models --device cpu"""
QUICK_HELP = ("a smoke run that checks the pipeline, not quality: the embedded sample at scale 0.2, a smaller model, "
              "20 steps per TRM on one thread, calibration and evaluation on 200 rows per split (20-26 s on 2 "
              "shared CPU cores, no GPU, 2026-12-03)")
TRAIN_EXAMPLE = """example:
  python -m pipelines.train_all_trms --data datasets/offline --models-dir models --trm tool --quick
  python -m pipelines.train_all_trms --data datasets/new --models-dir models --init-from models

A run in <models-dir>/<kind>/last of the same corpus and model shape is resumed (one that already finished
says so and trains nothing). A run of another corpus or model shape is moved into <kind>/old_run/ and
training starts afresh, from random weights or, with --init-from, from that checkpoint's weights."""
CHAT_EXAMPLE = """example:
  dexter-brain chat --models-dir models    (type /reset to forget the conversation, /quit to leave)"""


def _setup_logging(quiet: bool) -> bool | None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    return False if quiet else None


def fail(error: BaseException | str) -> int:
    """Print a command's one ``error: ...`` line and return the exit code 1. Progress bars still open (the
    error stopped their loop) are closed first, so no fragment of a bar shares the line."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    sys.stdout.flush()
    print(f"error: {error if isinstance(error, str) else error_message(error)}", file=sys.stderr, flush=True)
    return 1



def error_message(error: BaseException) -> str:
    """One line for an error a command reports: an OSError names its path and says what to do."""
    if isinstance(error, OSError) and error.filename is not None:
        path = str(error.filename) + (f" -> {error.filename2}" if error.filename2 is not None else "")
        reason = error.strerror or type(error).__name__
        advice = {errno.ENOTDIR: "a part of the path is a file, not a directory: choose another location",
                  errno.EROFS: "the file system is read-only: choose a location you can write to",
                  errno.EACCES: "check its permissions, or choose a location you can write to",
                  errno.EPERM: "check its permissions, or choose a location you can write to",
                  errno.ENOSPC: "free some space, or choose another location"}.get(error.errno)
        return f"{path}: {reason}" + (f": {advice}" if advice else "")
    from pydantic import ValidationError

    if isinstance(error, ValidationError):  # its str() starts with "1 validation error for ...": say which field
        first = error.errors()[0]
        where, message = ".".join(str(p) for p in first["loc"]), first["msg"].removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _known_errors() -> tuple[type[BaseException], ...]:
    from dexter_brain.checkpoint import CheckpointError
    from dexter_brain.corpora.split import ContaminationError
    from dexter_brain.data import CorpusNotFoundError
    from dexter_brain.raw import RawStoreError

    # OSError: an output directory that cannot be written (read-only, no permission, a file in the way).
    return (RawStoreError, CorpusNotFoundError, CheckpointError, ContaminationError, OSError)


# --- build -----------------------------------------------------------------------------------------------
def build_parser(prog: str = "build_trm_brain.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Build the brain: raw data -> corpora -> three TRMs -> "
                                "evaluation report.", epilog=BUILD_EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw", type=Path, help="the app's raw directory (default: generate the embedded sample)")
    p.add_argument("--datasets-dir", type=Path, default=Path("datasets/offline"), help="where the corpora go")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="where the TRMs and report go")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, split salt and training")
    p.add_argument("--scale", type=float, help="size of the embedded sample, without --raw (default: 1, or 0.2 "
                   "with --quick)")
    p.add_argument("--quick", action="store_true", help=QUICK_HELP)
    p.add_argument("--resume", action="store_true", help="continue an interrupted build where it stopped")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice, or 1 with "
                   "--quick)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def main_build(argv: list[str] | None = None, prog: str = "build_trm_brain.py") -> int:
    args = build_parser(prog).parse_args(argv)
    show = _setup_logging(args.quiet)
    from dexter_brain.build import build_brain

    try:
        summary = build_brain(args.raw, args.datasets_dir, args.models_dir, device=args.device, seed=args.seed,
                              quick=args.quick, resume=args.resume, scale=args.scale, threads=args.threads,
                              show_progress_bar=show)
    except _known_errors() as exc:
        return fail(exc)
    print(format_build_summary(summary))
    return 0


def format_build_summary(summary: dict) -> str:
    lines = [f"built the brain from {summary['raw']} in {summary['seconds']['total']:.0f} s"]
    for kind, splits in summary["counts"].items():
        lines.append(f"  {kind:9s} examples: " + ", ".join(f"{k} {v}" for k, v in splits.items()))
    s = summary["seconds"]
    lines.append(f"  time: generate {s['generate']:.0f} s, train {s['train']:.0f} s, calibrate {s['calibrate']:.0f} s, "
                 f"evaluate {s['evaluate']:.0f} s")
    for kind, info in summary["trained"].items():
        lines.append(f"  {kind:9s} trained {info['steps']} steps in {info['seconds']:.0f} s, "
                     f"validation {info['primary_metric']} {info['best_metric']:.3f}")
    for kind, reason in summary["skipped"].items():
        lines.append(f"  {kind:9s} not trained: {reason}")
    report = summary.get("report")
    if report:
        lines.append(headline(report))
    lines.append(f"  models: {summary['models_dir']}  corpora: {summary['datasets_dir']}"
                 + (f"  report: {Path(summary['models_dir']) / 'report.md'}" if report else ""))
    return "\n".join(lines)


def headline(report: dict) -> str:
    """The report's main figures on a few lines."""
    def f(section: str, key: str) -> str:
        value = (report.get(section) or {}).get(key)
        return "n/a" if value is None else f"{value:.3f}"

    def used(section: str) -> str:
        return "floor + residual" if (report.get(section) or {}).get("residual") else "floor alone"

    return "\n".join([
        f"  memory    recall@5 {f('memory', 'recall@5')} ({used('memory')}; floor {f('memory', 'floor_recall@5')}, "
        f"BM25 {f('memory', 'bm25_recall@5')}); follow-ups {f('memory', 'followup_recall@5')} "
        f"(stateless {f('memory', 'followup_recall@5_stateless')}); candidates hold "
        f"{f('memory', 'candidate_recall')} of the answers",
        f"  tool      top-1 {f('tool', 'top1')} ({used('tool')}; floor {f('tool', 'floor_top1')}, BM25 "
        f"{f('tool', 'bm25_top1')}, TF-IDF+LR {f('tool', 'linear_top1')}); corrections "
        f"{f('tool', 'correction_top1')}; unseen tools {f('tool', 'unseen_top1')} (BM25 {f('tool', 'bm25_unseen_top1')})",
        f"  reasoning step F1 {f('reasoning', 'step_f1')} ({used('reasoning')}; floor {f('reasoning', 'floor_step_f1')}, "
        f"nearest plan {f('reasoning', 'nn_step_f1')}); next step {f('reasoning', 'next_step_acc')}",
    ])


# --- train -----------------------------------------------------------------------------------------------
def train_parser(prog: str = "train_all_trms") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Train the TRMs from a corpus directory.",
                                epilog=TRAIN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("datasets/offline"), help="corpus directory (manifest.json)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="checkpoints go to <dir>/<kind>/")
    p.add_argument("--trm", choices=(*KINDS, "all"), default="all", help="which TRM to train")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="training device")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and exploration")
    p.add_argument("--max-steps", type=int, help="optimizer steps (default: the config's)")
    p.add_argument("--config", type=Path, help="a TrainConfig JSON file; explicit flags override it")
    p.add_argument("--quick", action="store_true", help="a smoke-test budget: a smaller model, 20 steps, one thread")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from last/")
    p.add_argument("--init-from", type=Path, help="start from this checkpoint's weights instead of random ones: a "
                   "best/ directory, a <kind> training directory, or a models directory holding <kind>/ (same "
                   "vocabulary and model sizes; a resumed run ignores it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def init_checkpoint(init_from: Path | None, kind: str) -> Path | None:
    """``--init-from`` for one kind: ``DIR/<kind>`` when DIR is a models directory holding it, else DIR."""
    if init_from is None:
        return None
    return init_from / kind if (init_from / kind).is_dir() else init_from


def main_train(argv: list[str] | None = None, prog: str = "train_all_trms") -> int:
    args = train_parser(prog).parse_args(argv)
    show = _setup_logging(args.quiet)
    from pydantic import ValidationError

    from dexter_brain.config import TrainConfig
    from dexter_brain.io import read_json
    from dexter_brain.runs import train_trm

    kinds = KINDS if args.trm == "all" else (args.trm,)
    try:
        manifest = read_json(args.data / "manifest.json")
    except FileNotFoundError:
        return fail(f"no corpus in {args.data} (manifest.json missing): run pipelines/generate_trm_training_data.py")
    for kind in kinds:
        entry = manifest["corpora"][kind]
        if not entry["splits"]["train"]:
            print(f"{kind}: not trained: {entry.get('empty_reason', 'no training examples')}")
            continue
        overrides = {"max_steps": args.max_steps} if args.max_steps else {}
        config = None
        if args.config:
            try:
                data = read_json(args.config)
                data.update(data_dir=str(args.data), out_dir=str(args.models_dir / kind), device=args.device,
                            **overrides)
                config = TrainConfig.model_validate(data)
            except (OSError, ValueError) as exc:  # ValueError: broken JSON or a pydantic ValidationError
                return fail(exc if isinstance(exc, OSError) else f"{args.config}: {error_message(exc)}")
        try:
            r = train_trm(kind, args.data, args.models_dir / kind, config=config, quick=args.quick, seed=args.seed,
                          device=args.device, resume=not args.no_resume,
                          init_from=init_checkpoint(args.init_from, kind), show_progress_bar=show, **overrides)
        except _known_errors() + (ValidationError,) as exc:  # ValidationError: flags that make no TrainConfig
            return fail(exc)
        if r["message"]:
            print(f"{kind}: {r['message']}")
        if r["start"] != "finished":
            print(f"{kind}: {r['steps']} steps in {r['seconds']:.0f} s ({r['examples_per_second']:.0f} examples/s), "
                  f"validation {r['primary_metric']} {r['best_metric']:.3f} -> {r['out_dir']}")
    return 0


# --- chat ------------------------------------------------------------------------------------------------
def main_chat(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dexter-brain chat", description="Talk to the brain in the terminal: each turn "
                                "shows the memories, the tool choice and the plan.", epilog=CHAT_EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="the models directory")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--conversation", default="chat", help="conversation id (its carry is kept between turns)")
    p.add_argument("--quiet", action="store_true", help="no banner and no warnings, only the turns")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING, format="%(message)s")
    from dexter_brain import UnifiedConsciousness

    try:
        brain = UnifiedConsciousness.from_dir(args.models_dir, device=args.device)
    except _known_errors() + (ValueError,) as exc:
        return fail(exc)
    if not args.quiet:
        print("dexter-brain chat: /reset forgets this conversation, /quit leaves.")
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not text:
            continue
        if text in ("/quit", "/exit"):
            return 0
        if text == "/reset":
            brain.reset_conversation(args.conversation)
            print("(conversation reset)")
            continue
        result = brain.process(text, conversation_id=args.conversation)
        print(render_turn(result))


def render_turn(result: dict) -> str:
    """One turn of ``process_input`` as the chat prints it: up to three memories, the tool, the plan, the reply."""
    lines = []
    for m in (result.get("memories") or [])[:3]:  # the memories kept (empty when memory abstained)
        lines.append(f"  memory  {m['score']:.2f}  {m['text'][:90]}  [{m['source']}]")
    memory = result.get("memory")  # the full retrieve result, None without a memory TRM
    if memory is not None and memory["abstain"]:
        lines.append("  memory  (nothing relevant stored)")
    tool = result.get("tool")
    if tool:
        lines.append(f"  tool    {tool['selected_tool']} ({tool['confidence']:.2f})"
                     + ("  fast path" if result.get("fast_path") else ""))
    plan = result.get("plan")
    if plan and plan.get("plan_steps"):
        lines.append(f"  plan    ({plan['complexity']}) " + " -> ".join(plan["plan_steps"][:8]))
    if result.get("response"):
        lines.append(f"  reply   {result['response']}")
    return "\n".join(lines) or "  (no output)"


# --- learn -----------------------------------------------------------------------------------------------
LEARN_EXAMPLE = """example:
  dexter-brain learn --models-dir models                  (feedback from models/feedback)
  dexter-brain learn --models-dir models --rollback       (put back the weights the last promotion replaced)

Each TRM with new feedback is fine-tuned from its best/ on the new examples plus a replay of the original
ones, and promoted only when no metric drops on the validation rows (the original split plus the new examples
held out) and none is worse on the original rows alone (a sign test over the rows that changed); the weights it
replaces are kept in <kind>/previous/. Restart a running server to serve the new ones."""


def main_learn(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dexter-brain learn", description="Learn from use: fine-tune the TRMs on the "
                                "feedback directory and promote them only when validation holds.",
                                epilog=LEARN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="the brain to improve")
    p.add_argument("--feedback", type=Path, help="the feedback directory (default: <models-dir>/feedback)")
    p.add_argument("--data", type=Path, help="the corpus the brain was built from (default: the one "
                   "<models-dir>/build_state.json names)")
    p.add_argument("--rollback", action="store_true", help="swap each TRM's previous/ and best/ back, and learn "
                   "nothing")
    p.add_argument("--force", action="store_true", help="learn a TRM even when its feedback has not changed "
                   "since the last learn")
    p.add_argument("--tolerance", type=float, default=0.0, help="how much a validation metric may drop and still "
                   "count as held (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out share, the replay and the fine-tuning")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1: learning runs beside "
                   "the app)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    args = p.parse_args(argv)
    show = _setup_logging(args.quiet)
    from dexter_brain.learn import LearnError, learn, rollback

    try:
        if args.rollback:
            done = rollback(args.models_dir)
            for kind, what in done.items():
                print(f"{kind:9s} {what}")
            return 0
        summary = learn(args.models_dir, feedback_dir=args.feedback, data_dir=args.data, seed=args.seed,
                        tolerance=args.tolerance, force=args.force, num_threads=args.threads,
                        show_progress_bar=show)
    except _known_errors() + (LearnError,) as exc:
        return fail(exc)
    print(format_learn_summary(summary))
    return 0


def format_learn_summary(summary: dict) -> str:
    """The before/after table of a learn: per kind and metric, the original validation and the new held-out
    examples (before -> after, rows), and whether the candidate was promoted and why."""
    if summary.get("message"):
        return summary["message"]
    def part(m: dict) -> str:
        if not m["n"]:
            return "-"
        return f"{m['before']:.3f} -> {m['after']:.3f} ({m['n']})"

    lines = [f"learned from {summary['feedback_dir']} in {summary['seconds']:.0f} s (run {summary['run_dir']})",
             f"{'kind':9s}  {'new':>11s}  {'metric':13s}  {'validation':24s}  {'original val':24s}  "
             f"{'new held-out':24s}  promoted"]
    for kind, info in summary["kinds"].items():
        new = f"+{info['new']['train']}/+{info['new']['val']}"
        verdict = {"promoted": "yes", "kept": "no"}.get(info["status"], "-")
        verdict += f": {info['reason']}" if info.get("reason") else ""
        if "metrics" not in info:
            lines.append(f"{kind:9s}  {new:>11s}  {'-':13s}  {'-':24s}  {'-':24s}  {'-':24s}  {verdict}")
            continue
        for i, (metric, parts) in enumerate(info["metrics"].items()):
            lines.append(f"{kind if i == 0 else '':9s}  {new if i == 0 else '':>11s}  {metric:13s}  "
                         f"{part(parts['all']):24s}  {part(parts['original']):24s}  {part(parts['new']):24s}  "
                         f"{verdict if i == 0 else ''}")
    lines.append("  new: training/held-out examples from the feedback; validation = original val + new held-out; "
                 "each: current -> candidate (rows)")
    return "\n".join(line.rstrip() for line in lines)


# --- dexter-brain ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "build": lambda a: main_build(a, prog="dexter-brain build"),
        "generate": lambda a: __import__("dexter_brain.commands.generate", fromlist=["main"]).main(a),
        "train": lambda a: main_train(a, prog="dexter-brain train"),
        "evaluate": lambda a: __import__("dexter_brain.commands.evaluate", fromlist=["main"]).main(a),
        "chat": main_chat,
        "serve": lambda a: __import__("dexter_brain.serve.command", fromlist=["main"]).main(a),
        "export": lambda a: __import__("dexter_brain.commands.export", fromlist=["main"]).main(a),
        "learn": main_learn,
    }
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: dexter-brain {build,generate,train,evaluate,chat,serve,export,learn} [options]\n\n"
              "  build     raw data -> corpora -> three TRMs -> evaluation report\n"
              "  generate  mine a raw directory into corpora (vocabulary, splits, tensors)\n"
              "  train     train the TRMs from a corpus directory\n"
              "  evaluate  quality against the baselines, calibration, latency, size\n"
              "  chat      an interactive terminal session\n"
              "  serve     the brain over HTTP for a host app (needs the serve extra)\n"
              "  export    the TRMs to ONNX (--format onnx; pip install 'dexter-brain[onnx]')\n"
              "  learn     fine-tune on the users' feedback; promote only what does not do worse (--rollback)\n\n"
              "example:\n  dexter-brain build --quick\n  dexter-brain chat --models-dir models\n"
              "  dexter-brain serve --models-dir models\n  dexter-brain learn --models-dir models")
        return 0 if argv and argv[0] in ("-h", "--help") else (2 if argv else 0)
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
