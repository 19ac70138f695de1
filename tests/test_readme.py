"""The README's examples run as written: its Python blocks against a tiny brain, every command's --help."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quick_start_has_exactly_two_bash_blocks_that_install_torch_first():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    bash = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert len(bash) == 2
    assert "python build_trm_brain.py" in bash[0] and "pytest" in bash[1]
    for block in bash:
        assert block.splitlines()[0] == "python -m pip install torch==2.13.0"


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs_as_written(index, tiny_brain, tmp_path):
    # The README's paths are relative to a project directory holding models/ and datasets/raw/sample.
    (tmp_path / "datasets" / "raw").mkdir(parents=True)
    (tmp_path / "datasets" / "raw" / "sample").symlink_to(tiny_brain["raw"])
    # A copy: the examples add memories, which the bank keeps durably, and export to ONNX beside the checkpoints.
    shutil.copytree(tiny_brain["models"], tmp_path / "models", ignore=shutil.ignore_patterns("bank.sqlite*"))
    code = blocks("python")[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "the example prints what it shows"


COMMANDS = [
    [sys.executable, "build_trm_brain.py"],
    [sys.executable, "-m", "dexter_brain.sample"],
    [sys.executable, "-m", "pipelines.generate_trm_training_data"],
    [sys.executable, "-m", "pipelines.train_all_trms"],
    [sys.executable, "-m", "pipelines.evaluate_trms"],
    [sys.executable, "-m", "dexter_brain.cli", "build"],
    [sys.executable, "-m", "dexter_brain.cli", "generate"],
    [sys.executable, "-m", "dexter_brain.cli", "train"],
    [sys.executable, "-m", "dexter_brain.cli", "evaluate"],
    [sys.executable, "-m", "dexter_brain.cli", "chat"],
    [sys.executable, "-m", "dexter_brain.cli", "serve"],
    [sys.executable, "-m", "dexter_brain.cli", "learn"],
    [sys.executable, "-m", "benchmarks.corpora"],
    [sys.executable, "-m", "benchmarks.ingest"],
    [sys.executable, "-m", "benchmarks.latency"],
    [sys.executable, "-m", "benchmarks.train"],
    [sys.executable, "-m", "dexter_brain.cli", "export"],
    [sys.executable, "-m", "pipelines.export_onnx"],
    [sys.executable, "-m", "benchmarks.learning"],
    [sys.executable, "-m", "benchmarks.realdata"],
    [sys.executable, "-m", "benchmarks.bank"],
    [sys.executable, "-m", "benchmarks.serve"],
    [sys.executable, "-m", "benchmarks.onnx_parity"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[1:]))
def test_every_command_has_help_with_an_example_and_a_quiet_flag(command):
    done = subprocess.run(command + ["--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--quiet" in done.stdout
    example = re.split(r"(?i)\bexamples?:", done.stdout)[-1]
    assert re.search(r"(?m)^\s*(python|dexter-brain|torchrun) ", example), done.stdout


def test_corpora_benchmark_quiet_prints_the_measurements_only(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.corpora", "--scales", "0.05", "--cores", "1",
                           "--devdata", str(tmp_path / "absent"), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().split("\n")
    assert lines[0].startswith("sample scale 0.05 (seed 0), corpora on 1 cores: ") and " s wall " in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["memory", "tool", "reasoning"]
