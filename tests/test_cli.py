"""Tests for the command-line entry points (dexter_brain/cli.py), run as real subprocesses on the session's tiny
brain: ``dexter-brain chat`` driven through stdin (memories, a tool, a plan, ``/reset``).

Run: python -m pytest tests/test_cli.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dexter_brain import UnifiedConsciousness
from dexter_brain.io import read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with this checkout importable, as a user would run it."""
    return subprocess.run([sys.executable, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


# --- chat -------------------------------------------------------------------------------------------------------
def turns(stdout: str) -> list[list[str]]:
    """The printed lines of each turn (everything after a ``you> `` prompt, up to the next one)."""
    return [part.rstrip("\n").split("\n") for part in stdout.split("you> ")[1:]]


def test_chat_through_stdin_shows_memories_a_tool_a_plan_and_resets(tiny_brain, tmp_path):
    models, data = tiny_brain["models"], tiny_brain["data"]
    question = "What did I buy from John Lewis?"
    goal = next(r["goal"] for r in read_jsonl(data / "reasoning" / "train.jsonl") if len(r["steps"]) >= 3)
    done = run(["-m", "dexter_brain.cli", "chat", "--models-dir", str(models), "--device", "cpu", "--quiet"],
               cwd=tmp_path, stdin=f"{question}\n{goal}\n/reset\n{question}\n/quit\n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    first, planned, reset, again, quit_ = turns(done.stdout)
    assert reset == ["(conversation reset)"] and quit_ == [""]

    # The memories printed are those the Python API returns for the same turn, with their sources.
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    expected = brain.process(question, conversation_id="chat")
    assert expected["memories"], "the question must find stored memories in the tiny brain"
    memory_lines = [line for line in first if line.startswith("  memory  ")]
    assert memory_lines == [f"  memory  {m['score']:.2f}  {m['text'][:90]}  [{m['source']}]"
                            for m in expected["memories"][:3]]
    bank = {f["text"]: f["source"] for f in read_jsonl(data / "memory" / "bank.jsonl")}
    assert all(bank[m["text"]] == m["source"] for m in expected["memories"])

    catalogue = {t["name"] for t in read_jsonl(data / "tool" / "catalogue.jsonl")}
    for turn in (first, planned, again):
        (tool_line,) = [line for line in turn if line.startswith("  tool    ")]
        assert tool_line.split()[1] in catalogue

    (plan_line,) = [line for line in planned if line.startswith("  plan    ")]
    complexity, steps = plan_line[len("  plan    ("):].split(") ", 1)
    steps = steps.split(" -> ")
    assert len(steps) >= 1 and complexity == ("simple" if len(steps) <= 3 else
                                              "moderate" if len(steps) <= 6 else "complex")

    # /reset dropped the carry: the question asked again is answered exactly as in a fresh conversation.
    assert again == first
