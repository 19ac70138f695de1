"""Load test of ``dexter-brain serve`` on loopback: throughput, latency per endpoint, errors, cross-talk.

Starts the real server (``python -m dexter_brain.serve``, port 0, carries in a temporary directory) on
``--models-dir``, then ``--clients`` concurrent clients work through up to ``--conversations``
conversations until ``--seconds`` have passed (a conversation begun before then is finished). Each
conversation is six requests in order: ``turn``, ``retrieve`` ("tell me more"), ``select_tool`` (5-10
catalogue tools), ``plan``, ``next_step`` (the plan's first step done) and ``reset``. Printed: requests/s,
p50/p99 milliseconds per endpoint, errors (must be 0), and the cross-talk check: every finished
conversation is replayed alone and in order through the in-process API on the same models, and its
answers must equal what the server answered while the other conversations ran (floats to 1e-6: see
``same``). The exit status is 1 when a request failed or a conversation's answers differ.

Loopback only; bounded in count and time. Run from the repository root (CPU, about a minute):

    python -m benchmarks.serve --models-dir models
    python -m benchmarks.serve --models-dir /tmp/serve_b/models --clients 16 --conversations 1000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dexter_brain import UnifiedConsciousness  # noqa: E402
from dexter_brain.serve.settings import default_workers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["What website projects do I have?", "when is my next dentist appointment", "what did I buy from John Lewis",
           "what's my blood type", "when does the car insurance renew", "who is the contact for the bakery site",
           "how much did the rain jacket cost", "what are Jess's allergies", "where is the spare key",
           "what's Sam's phone number"]
TASKS = ["Check system status", "what's the weather in Paris tomorrow", "send an email to Jo about the invoice",
         "play some music", "convert 100 usd to eur", "set a timer for 10 minutes", "find my notes about taxes",
         "search flights to Rome", "remind me to call mum at 6", "what's on my calendar on friday"]
GOALS = ["Build an income-generating website", "Plan a weekend in Lisbon", "Sort out my tax return",
         "Move the call with Samantha", "Fix the slow laptop", "Get the car through its MOT"]
ENDPOINTS = ("/v1/turn", "/v1/retrieve", "/v1/select_tool", "/v1/plan", "/v1/next_step", "reset")


def same(got, expected) -> bool:
    """Equal, with floats to 1e-6: the tool wrapper caches each tool's text vector from the batch it was first
    encoded in, and batches of other sizes round the last bits differently."""
    if isinstance(expected, float) and isinstance(got, (int, float)):
        return abs(got - expected) <= 1e-9 + 1e-6 * abs(expected)
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))
    return got == expected


def plain(result):
    return json.loads(json.dumps(result))


def without_timings(turn: dict) -> dict:
    return {k: v for k, v in turn.items() if k != "timings_ms"}


# --- the server ------------------------------------------------------------------------------------------------
def start_server(models_dir: Path, carry_dir: Path, log: Path, workers: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dexter_brain.serve", "--models-dir", str(models_dir), "--port", "0", "--carry-dir",
         str(carry_dir), "--workers", str(workers), "--save-every", "0", "--quiet"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"listening on (http://\S+) ", log.read_text())
        if found:
            return process, found.group(1)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")


# --- the load ------------------------------------------------------------------------------------------------------
def first_requests(i: int, tools: list[str]) -> list[tuple[str, dict]]:
    """Conversation ``i``'s requests up to the plan (next_step's body depends on the plan's answer)."""
    cid = f"load-{i}"
    offered = [tools[(i * 7 + j * 3) % len(tools)] for j in range(5 + i % 6)]
    offered = list(dict.fromkeys(offered))
    return [("/v1/turn", {"text": QUERIES[i % len(QUERIES)], "conversation_id": cid}),
            ("/v1/retrieve", {"query": "tell me more", "conversation_id": cid}),
            ("/v1/select_tool", {"task": TASKS[i % len(TASKS)], "available_tools": offered, "conversation_id": cid}),
            ("/v1/plan", {"goal": GOALS[i % len(GOALS)], "conversation_id": cid})]


async def run_load(url: str, tools: list[str], clients: int, conversations: int, seconds: float) -> dict:
    latencies: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
    errors: list[str] = []
    finished: dict[int, list[tuple[str, dict, dict]]] = {}
    next_index = 0
    deadline = time.monotonic() + seconds

    async def post(client: httpx.AsyncClient, endpoint: str, path: str, body: dict | None) -> dict | None:
        t0 = time.perf_counter()
        try:
            r = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
            return None
        latencies[endpoint].append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            errors.append(f"{endpoint}: {r.status_code} {r.text[:200]}")
            return None
        return r.json()

    async def one_conversation(client: httpx.AsyncClient, i: int) -> None:
        record = []
        for path, body in first_requests(i, tools):
            answer = await post(client, path, path, body)
            if answer is None:
                return
            record.append((path, body, answer))
        plan = record[-1][2]["plan_steps"]
        body = {"goal": GOALS[i % len(GOALS)], "completed": plan[:1], "conversation_id": f"load-{i}"}
        answer = await post(client, "/v1/next_step", "/v1/next_step", body)
        if answer is None:
            return
        record.append(("/v1/next_step", body, answer))
        if await post(client, "reset", f"/v1/conversations/load-{i}/reset", None) is not None:
            finished[i] = record

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < conversations and time.monotonic() < deadline:
            i, next_index = next_index, next_index + 1
            await one_conversation(client, i)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "finished": finished, "started": next_index,
            "seconds": elapsed}


def cross_talk(brain: UnifiedConsciousness, finished: dict[int, list]) -> list[int]:
    """The conversations whose server answers differ from a sequential in-process replay."""
    differ = []
    for i, record in sorted(finished.items()):
        ok = True
        for path, body, answer in record:
            if path == "/v1/turn":
                expected, answer = without_timings(brain.process(**body)), without_timings(answer)
            elif path == "/v1/retrieve":
                expected = brain.memory.retrieve(**body)
            elif path == "/v1/select_tool":
                expected = brain.tool.select_tool(**body)
            elif path == "/v1/plan":
                expected = brain.reasoning.plan(**body)
            else:
                expected = brain.reasoning.next_step(**body)
            ok = ok and same(answer, plain(expected))
        brain.reset_conversation(f"load-{i}")
        if not ok:
            differ.append(i)
    return differ


def machine() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"machine: {os.cpu_count()} CPUs ({usable} usable), {platform.processor() or platform.machine()}, "
            f"load average {load}; torch {torch.__version__}; Python {platform.python_version()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0],
                                     epilog="example:\n  python -m benchmarks.serve --models-dir models --clients 16 "
                                            "--conversations 1000 --seconds 30",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="the brain to serve")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--conversations", type=int, default=1000, help="at most this many conversations")
    parser.add_argument("--seconds", type=float, default=30.0, help="start no conversation after this long")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="the server's worker threads (default: one per core)")
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    if not args.models_dir.is_dir():
        print(f"error: models directory not found: {args.models_dir}: build the brain first "
              "(python build_trm_brain.py --quick)", file=sys.stderr)
        return 1
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    torch.set_num_threads(1)  # as the server runs each call
    brain = UnifiedConsciousness.from_dir(args.models_dir, device="cpu")
    tools = brain.tool.catalogue
    print(machine())
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        say("starting the server ...")
        process, url = start_server(args.models_dir, Path(tmp) / "carries", Path(tmp) / "server.log", args.workers)
        try:
            say(f"{url}: {args.clients} clients, up to {args.conversations} conversations or {args.seconds:.0f} s")
            load = asyncio.run(run_load(url, tools, args.clients, args.conversations, args.seconds))
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
        finally:
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=120)
        lat, n = load["latencies"], sum(len(v) for v in load["latencies"].values())
        print(f"server: {args.workers} worker threads, 1 torch thread each; exit after SIGTERM: {status}")
        print(f"load: {len(load['finished'])} conversations finished ({load['started']} started), {n:,} requests in "
              f"{load['seconds']:.1f} s = {n / load['seconds']:.1f} requests/s")
        print(f"{'endpoint':18s}{'requests':>10s}{'p50 ms':>10s}{'p99 ms':>10s}")
        for endpoint in ENDPOINTS:
            values = np.array(lat[endpoint])
            if len(values):
                print(f"{endpoint:18s}{len(values):>10,d}{np.percentile(values, 50):>10.1f}"
                      f"{np.percentile(values, 99):>10.1f}")
        print(f"errors: {len(load['errors'])}")
        for error in load["errors"][:5]:
            print(f"  {error}")
        assert "dexter_brain_requests_total" in metrics
    say("replaying every finished conversation alone, in process ...")
    t0 = time.perf_counter()
    differ = cross_talk(brain, load["finished"])
    print(f"cross-talk: {len(load['finished'])} conversations replayed in process in {time.perf_counter() - t0:.0f} s, "
          f"{len(differ)} differ" + (f" (first: load-{differ[0]})" if differ else ""))
    return 1 if load["errors"] or differ else 0


if __name__ == "__main__":
    sys.exit(main())
