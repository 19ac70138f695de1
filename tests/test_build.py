"""Tests for dexter_brain/build.py (the one-command build): a quick build killed with SIGKILL at several points
(during the corpora, during training after a checkpoint, during calibration) and resumed with ``--resume``
ends with every weight byte-identical to an uninterrupted build of the same data.

Run: python -m pytest tests/test_build.py -q   (about a minute: four quick builds of the travel fixture)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_travel_raw
from dexter_brain.io import read_json

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("memory", "tool", "reasoning")


def build(raw: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "build_trm_brain.py"), "--raw", str(raw), "--datasets-dir", str(out / "ds"),
            "--models-dir", str(out / "models"), "--quick", "--quiet", *extra]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def weights(models: Path) -> dict[str, bytes]:
    return {str(p.relative_to(models)): p.read_bytes() for p in sorted(models.rglob("*.safetensors"))}


def stage_done(models: Path, stage: str) -> bool:
    try:
        return read_json(models / "build_state.json")["stages"].get(stage, {}).get("done", False)
    except (OSError, ValueError, KeyError):
        return False


# When to kill: a file the build writes at that point (polled).
KILL_POINTS = {
    "during the corpora": lambda out: (out / "ds" / "corpora.json").exists(),
    "in training, after a checkpoint": lambda out: (out / "models" / "memory" / "last" / "meta.json").exists(),
    "during calibration": lambda out: stage_done(out / "models", "train.reasoning"),
}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("whole")
    raw = make_travel_raw(root / "raw")
    done = subprocess.run(build(raw, root), capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return raw, weights(root / "models")


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_build_killed_anywhere_resumes_to_the_same_weights(uninterrupted, tmp_path, point):
    raw, expected = uninterrupted
    process = subprocess.Popen(build(raw, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.monotonic() + 300
    while not KILL_POINTS[point](tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the build ended before it could be killed"
    assert not stage_done(tmp_path / "models", "evaluate")

    done = subprocess.run(build(raw, tmp_path, "--resume"), capture_output=True, text=True, env=env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    got = weights(tmp_path / "models")
    assert got.keys() == expected.keys() and {k.split("/")[0] for k in got} == set(KINDS)
    assert [k for k in got if got[k] != expected[k]] == []
