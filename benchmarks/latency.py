"""Latency of the three wrappers: p50/p95 milliseconds per call, single and batched, and an 8-way concurrent load.

The memory bank is first grown to ``--facts`` facts with ``add_memory`` (the checkpoint's own facts with other
numbers, dates, names and shops, so no two are alike), then each call is timed ``--calls`` times over 8
conversations with their carry: ``retrieve``, ``select_tool`` (5-10 available tools), ``plan``, ``next_step``;
``retrieve_many`` and ``select_tool_many`` with batches of ``--batch`` (reported per call); and finally
``--calls`` mixed calls from ``--threads`` threads at once (every call must complete). Targets (p50, 2 CPU
cores): retrieve <= 10 ms, select_tool <= 5 ms, plan <= 20 ms, next_step <= 20 ms.

``--backend torch,onnx,onnx-int8`` repeats everything on each backend (the ONNX export run by onnxruntime, with
as many threads as torch) and prints the p50s side by side; the sizes of the checkpoint weights and of the
exported files (fp32, int8) end the output.

Run from the repository root (CPU; a minute or two per backend, most of it growing the bank):

    python -m benchmarks.latency --models-dir models
    python -m benchmarks.latency --models-dir /tmp/lead_m --facts 10000 --calls 200 --threads 8
    dexter-brain export --format onnx --models-dir models --int8 && \
        python -m benchmarks.latency --models-dir models --backend torch,onnx,onnx-int8
    python -m benchmarks.latency --models-dir models --device cuda    # on a GPU machine
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dexter_brain import MemoryTRM, ReasoningTRM, ToolTRM  # noqa: E402
from dexter_brain.checkpoint import CheckpointError  # noqa: E402
from dexter_brain.sample.values import vary  # noqa: E402
from dexter_brain.wrappers.common import BACKENDS  # noqa: E402

TARGETS_MS = {"retrieve": 10.0, "select_tool": 5.0, "plan": 20.0, "next_step": 20.0}
CONVERSATIONS = [f"bench-{i}" for i in range(8)]
QUERIES = ["What website projects do I have?", "when is my next dentist appointment", "tell me more about that",
           "what did I buy from John Lewis", "which one was cheaper?", "what's my blood type",
           "when does the car insurance renew", "who is the contact for the bakery site", "and the other one?",
           "how much did the rain jacket cost", "what are Jess's allergies", "where is the spare key"]
TASKS = ["Check system status", "what's the weather in Paris tomorrow", "send an email to Jo about the invoice",
         "play some music", "convert 100 usd to eur", "set a timer for 10 minutes", "find my notes about taxes",
         "search flights to Rome", "how much space is left on the disk", "remind me to call mum at 6",
         "translate good morning to Spanish", "what's on my calendar on friday"]
GOALS = ["Build an income-generating website", "Plan a weekend in Lisbon", "Sort out my tax return",
         "Move the call with Samantha", "Fix the slow laptop", "Get the car through its MOT"]


def grow_bank(memory: MemoryTRM, facts: int, rng: random.Random) -> float:
    """Add varied copies of the bank's facts with ``add_memory`` until it holds ``facts``; returns seconds."""
    texts = [f["text"] for f in memory.featurizer.facts]
    start = time.perf_counter()
    i = 0
    while len(memory) < facts:
        memory.add_memory(vary(texts[i % len(texts)], rng), id=f"bench-fact-{i}")
        i += 1
    return time.perf_counter() - start


def timed(fn, n: int, warmup: int = 5) -> np.ndarray:
    """Milliseconds of ``fn(i)`` for i in range(n), after ``warmup`` untimed calls."""
    for i in range(warmup):
        fn(i)
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out[i] = (time.perf_counter() - t0) * 1000
    return out


def row(name: str, ms: np.ndarray, target: float | None = None) -> str:
    p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
    verdict = "" if target is None else f"  target <= {target:g} ms: {'met' if p50 <= target else 'MISSED'}"
    return f"  {name:<28} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms   (n={len(ms)}){verdict}"


def machine(device: str) -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    gpu = f", GPU {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""
    return (f"machine: {os.cpu_count()} CPUs ({usable} usable), {platform.processor() or platform.machine()}, "
            f"load average {load}; torch {torch.__version__}, {torch.get_num_threads()} torch threads; "
            f"device {device}{gpu}")


def parse_backends(text: str) -> list[str]:
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        raise argparse.ArgumentTypeError(f"backends are a comma-separated list of {', '.join(BACKENDS)}, got {text!r}")
    return list(dict.fromkeys(backends))


def size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def export_sizes(models_dir: Path) -> list[str]:
    """One line per kind: the checkpoint's weights and the exported files (fp32, int8), in MB."""
    from dexter_brain.checkpoint import WEIGHTS, resolve_checkpoint
    from dexter_brain.export import INT8_SCORER_FILE, MANIFEST, onnx_dir_for
    from dexter_brain.io import read_json

    lines = []
    for kind in ("memory", "tool", "reasoning"):
        checkpoint = resolve_checkpoint(models_dir / kind)
        line = f"  {kind:<10} weights {size((checkpoint / WEIGHTS).stat().st_size):>9}"
        manifest_path = onnx_dir_for(checkpoint) / MANIFEST
        if manifest_path.exists():
            sizes = read_json(manifest_path)["bytes"]
            # What each backend loads: the scorer (fp32 or int8) and the fp32 candidate encoder (memory, tool).
            encoder = sizes.get("encoder.onnx", 0)
            fp32, int8 = sizes["scorer.onnx"] + encoder, sizes.get(INT8_SCORER_FILE, 0) + encoder
            line += f"   onnx {size(fp32):>9}   onnx-int8 " + (f"{size(int8):>9}" if INT8_SCORER_FILE in sizes
                                                              else "      n/a")
            line += f"   ({', '.join(f'{n} {size(v)}' for n, v in sorted(sizes.items()))})"
        else:
            line += "   (not exported)"
        lines.append(line)
    return lines


def measure(backend: str, args, say) -> dict[str, np.ndarray]:
    """Every measurement on one backend; prints them and returns milliseconds per call by name."""
    # A bank of its own, made from the checkpoint's facts: the added facts never reach the models' bank.
    with tempfile.TemporaryDirectory(prefix="latency-bank-") as scratch:
        return measure_with_bank(backend, args, say, Path(scratch) / "bank.sqlite")


def measure_with_bank(backend: str, args, say, bank: Path) -> dict[str, np.ndarray]:
    rng = random.Random(args.seed)  # the same facts and inputs on every backend
    memory = MemoryTRM.from_checkpoint(args.models_dir / "memory", device=args.device, backend=backend, bank=bank)
    tool = ToolTRM.from_checkpoint(args.models_dir / "tool", device=args.device, backend=backend)
    reasoning = ReasoningTRM.from_checkpoint(args.models_dir / "reasoning", device=args.device, backend=backend)
    print(f"backend {backend}:")
    start_facts = len(memory)
    say(f"growing the memory bank from {start_facts:,} to {args.facts:,} facts with add_memory ...")
    grow_seconds = grow_bank(memory, args.facts, rng)
    t0 = time.perf_counter()
    memory.retrieve(QUERIES[0], conversation_id="warm")  # rebuilds the lexical index once after the adds
    rebuild_ms = (time.perf_counter() - t0) * 1000
    print(f"bank: {len(memory):,} facts ({len(memory) - start_facts:,} added in {grow_seconds:.1f} s, "
          f"{grow_seconds * 1000 / max(len(memory) - start_facts, 1):.2f} ms each; first retrieve after the adds "
          f"{rebuild_ms:.0f} ms)")

    catalogue = tool.catalogue
    tool_lists = [rng.sample(catalogue, rng.randint(5, min(10, len(catalogue)))) for _ in range(64)]
    plans = reasoning.featurizer.plans
    goals = GOALS + [p["goal"] for p in rng.sample(plans, min(len(plans), 26))]
    steps = [(p["goal"], p["steps"][: rng.randint(0, max(len(p["steps"]) - 1, 0))])
             for p in rng.sample(plans, min(len(plans), 32))]
    conv = lambda i: CONVERSATIONS[i % len(CONVERSATIONS)]  # noqa: E731
    calls = {
        "retrieve": lambda i: memory.retrieve(QUERIES[i % len(QUERIES)], k=5, conversation_id=conv(i)),
        "select_tool": lambda i: tool.select_tool(TASKS[i % len(TASKS)], available_tools=tool_lists[i % 64],
                                                  conversation_id=conv(i)),
        "plan": lambda i: reasoning.plan(goals[i % len(goals)], conversation_id=conv(i)),
        "next_step": lambda i: reasoning.next_step(steps[i % len(steps)][0], completed=steps[i % len(steps)][1],
                                                   conversation_id=conv(i)),
    }
    results: dict[str, np.ndarray] = {}
    print("single calls:")
    for name, fn in calls.items():
        results[name] = timed(fn, args.calls)
        print(row(name, results[name], TARGETS_MS[name]))
    # A catalogue of --catalogue tools (the logged ones and made-up ones with descriptions): shortlisted first.
    big = [{"name": n, "description": tool.featurizer.describe(n)} for n in tool.catalogue]
    big += [{"name": f"suite{k}.operation{k}", "description": f"Runs internal operation {k} on {rng.choice(TASKS)}"}
            for k in range(max(args.catalogue - len(big), 0))]
    name = f"select_tool, {len(big):,} tools"
    results[name] = timed(lambda i: tool.select_tool(TASKS[i % len(TASKS)], available_tools=big,
                                                     conversation_id=f"catalogue-{i % 8}"), max(args.calls // 4, 10))
    print(row(name, results[name]))

    B = args.batch
    batch_ids = [f"batch-{j}" for j in range(B)]
    batched = {
        f"retrieve_many (batch {B})": lambda i: memory.retrieve_many(
            [QUERIES[(i * B + j) % len(QUERIES)] for j in range(B)], k=5, conversation_ids=batch_ids),
        f"select_tool_many (batch {B})": lambda i: tool.select_tool_many(
            [TASKS[(i * B + j) % len(TASKS)] for j in range(B)], [tool_lists[(i + j) % 64] for j in range(B)],
            conversation_ids=batch_ids),
    }
    print("batched calls (milliseconds per call = batch time / batch size):")
    for name, fn in batched.items():
        results[name] = timed(fn, max(args.calls // B, 5), warmup=2) / B
        print(row(name, results[name]))

    mixed = list(calls.values())
    latencies: list[float] = []

    def one(i: int) -> None:
        t = time.perf_counter()
        mixed[i % len(mixed)](i)
        latencies.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        futures = [pool.submit(one, i) for i in range(args.calls)]
        errors = [f.exception() for f in futures]
    wall = time.perf_counter() - t0
    failed = [e for e in errors if e is not None]
    print(f"concurrent: {args.threads} threads, {args.calls} calls issued (retrieve/select_tool/plan/next_step "
          f"in turn over {len(CONVERSATIONS)} conversations), {len(latencies)} completed, {len(failed)} errors, "
          f"{wall:.2f} s, {args.calls / wall:.1f} calls/s")
    results["call under load"] = np.array(latencies)
    print(row("call under load", results["call under load"]))
    for e in failed[:3]:
        print(f"  error: {type(e).__name__}: {e}")
    if failed or len(latencies) != args.calls:
        raise RuntimeError(f"{len(failed)} of {args.calls} concurrent calls failed on {backend}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print p50/p95 latency of retrieve, select_tool, plan and next_step (single, batched, "
                    "concurrent) on a memory bank grown to --facts facts, on one or more backends side by side.",
        epilog="example: python -m benchmarks.latency --models-dir models --facts 10000 --calls 200 "
               "--backend torch,onnx,onnx-int8")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="directory holding memory/, tool/ and reasoning/ checkpoints (default: models)")
    parser.add_argument("--facts", type=int, default=10_000, help="grow the memory bank to this many facts")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per measurement")
    parser.add_argument("--threads", type=int, default=8, help="threads of the concurrent load")
    parser.add_argument("--batch", type=int, default=16, help="batch size of retrieve_many / select_tool_many")
    parser.add_argument("--catalogue", type=int, default=1_000,
                        help="also time select_tool over a catalogue of this many tools (default: 1000)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu; the onnx backends: cpu)")
    parser.add_argument("--backend", type=parse_backends, default=["torch"],
                        help="comma-separated backends to measure in turn: torch, onnx (the fp32 export run by "
                             "onnxruntime), onnx-int8 (default: torch; export first with `dexter-brain export "
                             "--format onnx --int8`)")
    # One intra-op thread by default: these models are too small to gain from more, and on a busy 2-core
    # machine the second OpenMP thread spin-waits for a core (measured: plan p50 154 ms with 1, 913 ms with 2).
    # onnxruntime gets the same number of threads.
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch (and onnxruntime) intra-op threads (default: 1; 0 keeps torch's own choice)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic facts and inputs")
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    for kind in ("memory", "tool", "reasoning"):
        if not (args.models_dir / kind).exists():
            print(f"error: no {kind} checkpoint in {args.models_dir}: train the brain first (build_trm_brain.py)",
                  file=sys.stderr)
            return 1
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    print(machine("cpu" if args.backend != ["torch"] else args.device))
    results = {}
    for backend in args.backend:
        try:
            results[backend] = measure(backend, args, say)
        except CheckpointError as exc:  # ExportError is one: no export, or a stale one
            print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 1
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if len(results) > 1:
        print("p50 side by side (milliseconds per call):")
        print(f"  {'':<28}" + "".join(f"{b:>12}" for b in results))
        for name in next(iter(results.values())):
            print(f"  {name:<28}" + "".join(f"{np.percentile(r[name], 50):12.2f}" for r in results.values()))
    print("sizes:")
    print("\n".join(export_sizes(args.models_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
