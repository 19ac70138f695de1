"""Tests for the command-line entry points (dexter_brain/cli.py, build_trm_brain.py, pipelines/*), run as real
subprocesses on the session's tiny brain and the travel fixture:

- ``dexter-brain chat`` driven through stdin: memories, a tool, a plan, ``/reset``;
- every path that meets an output directory it cannot create (a path under a regular file, which fails even
  as root), a corrupt or wrongly shaped checkpoint, or a run that cannot be resumed, prints exactly one
  ``error: ...`` line naming the path, exits 1, and shows no traceback.

Run: python -m pytest tests/test_cli.py -q   (about a minute: each case starts a Python process, one runs a
whole quick build of the travel fixture)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_travel_raw
from dexter_brain import UnifiedConsciousness
from dexter_brain.build import STATE_FILE, BuildState, build_settings
from dexter_brain.checkpoint import write_checkpoint_file
from dexter_brain.io import read_json, read_jsonl

ROOT = Path(__file__).resolve().parents[1]
BUILD = str(ROOT / "build_trm_brain.py")
NOT_A_DIRECTORY = "Not a directory: a part of the path is a file, not a directory: choose another location"


def run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd`` with this checkout importable, as a user would run it."""
    return subprocess.run([sys.executable, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed command, after checking there is exactly one and no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    # split("\n"), not splitlines(): a progress bar's "\r" must not pass for the start of a line.
    lines = [line for line in done.stderr.split("\n") if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    return lines[0]


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


# --- output directories that cannot be created --------------------------------------------------------------
@pytest.fixture
def blocked(tmp_path) -> Path:
    """A regular file: any directory under it cannot be created, whoever runs the command."""
    path = tmp_path / "file"
    path.write_text("not a directory\n", encoding="utf-8")
    return path


def test_build_into_an_unwritable_models_dir_gives_the_exact_line(blocked, tmp_path):
    raw = make_travel_raw(tmp_path / "raw")
    done = run([BUILD, "--raw", str(raw), "--datasets-dir", str(tmp_path / "ds"), "--models-dir",
                str(blocked / "models"), "--quick", "--quiet"], cwd=tmp_path)
    assert error_line(done) == f"error: {blocked / 'models'}: {NOT_A_DIRECTORY}"


@pytest.mark.parametrize("command", ["dexter-brain build", "generate", "generate with a progress bar"])
def test_unwritable_datasets_dir_is_one_line(blocked, tmp_path, command):
    raw = make_travel_raw(tmp_path / "raw")
    out = blocked / "datasets"
    if command.endswith("bar"):
        # The output directory exists, but a file stands where the memory corpus goes: the run fails once
        # its progress bar is drawn.
        out = tmp_path / "datasets"
        out.mkdir()
        (out / "memory").write_text("in the way\n", encoding="utf-8")
    if command == "dexter-brain build":
        args = ["-m", "dexter_brain.cli", "build", "--raw", str(raw), "--datasets-dir", str(out), "--models-dir",
                str(tmp_path / "models"), "--quick", "--quiet"]
    else:
        args = ["-m", "pipelines.generate_trm_training_data", "--raw", str(raw), "--out", str(out)]
        args += [] if command.endswith("bar") else ["--quiet"]
    done = run(args, cwd=tmp_path)
    line = error_line(done)
    if command.endswith("bar"):
        assert line.startswith(f"error: {out / 'memory'}: ")
        assert "corpora:" in done.stderr  # the bar was drawn, and closed on a line of its own before the error
    else:
        assert line.startswith(f"error: {out}") and line.endswith(NOT_A_DIRECTORY)


def test_the_console_commands_generate_and_evaluate_run_the_library_commands(tmp_path):
    # ``dexter-brain generate`` / ``evaluate`` run dexter_brain.commands, as the pipelines/ scripts do.
    raw = make_travel_raw(tmp_path / "raw")
    done = run(["-m", "dexter_brain.cli", "generate", "--raw", str(raw), "--out", str(tmp_path / "ds"), "--quiet"],
               cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip().endswith(f"wrote {tmp_path / 'ds'}") and (tmp_path / "ds" / "manifest.json").is_file()
    done = run(["-m", "dexter_brain.cli", "evaluate", "--models-dir", str(tmp_path / "nothing"), "--datasets-dir",
                str(tmp_path / "ds"), "--quiet"], cwd=tmp_path)
    assert error_line(done).startswith(f"error: no trained TRM in {tmp_path / 'nothing'} (expected memory/, ")


def test_train_into_an_unwritable_models_dir_is_one_line(tiny_brain, blocked, tmp_path):
    done = run(["-m", "pipelines.train_all_trms", "--data", str(tiny_brain["data"]), "--models-dir",
                str(blocked / "models"), "--trm", "tool", "--quick", "--quiet"], cwd=tmp_path)
    assert error_line(done) == f"error: {blocked / 'models' / 'tool'}: {NOT_A_DIRECTORY}"


@pytest.mark.parametrize("content, reason", [(None, "No such file or directory"),
                                             ('{"lr": 0.001}', "model: Field required"),
                                             ("{not json", "Expecting property name enclosed in double quotes")])
def test_a_bad_train_config_file_is_one_line_naming_it(tiny_brain, tmp_path, content, reason):
    config = tmp_path / "run.json"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    done = run(["-m", "pipelines.train_all_trms", "--data", str(tiny_brain["data"]), "--models-dir",
                str(tmp_path / "models"), "--trm", "tool", "--config", str(config), "--quiet"], cwd=tmp_path)
    assert error_line(done).startswith(f"error: {config}: {reason}")


def test_evaluate_into_an_unwritable_out_dir_fails_before_evaluating(tiny_brain, blocked, tmp_path):
    done = run(["-m", "pipelines.evaluate_trms", "--models-dir", str(tiny_brain["models"]), "--datasets-dir",
                str(tiny_brain["data"]), "--out", str(blocked / "report"), "--no-calibrate", "--quiet"],
               cwd=tmp_path)
    assert error_line(done) == f"error: {blocked / 'report'}: {NOT_A_DIRECTORY}"


# --- broken checkpoints ---------------------------------------------------------------------------------------
def flip_bytes(path: Path, count: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - count // 2
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))


# Every damage is refused by every wrapper in tests/test_wrappers_memory.py; here, that the commands say so in a line.
@pytest.mark.parametrize("command, damage", [("chat", "flipped weights"), ("evaluate", "flipped weights"),
                                             ("chat", "featurizer a list"),
                                             ("evaluate", "featurizer of another shape")])
def test_a_broken_checkpoint_is_one_line_naming_the_file(tiny_brain, tmp_path, command, damage):
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    best = models / "memory" / "best"  # the first TRM either command loads
    if damage == "flipped weights":
        flip_bytes(best / "model.safetensors")
        named = best / "model.safetensors"
    else:
        write_checkpoint_file(best, "featurizer.json", [] if damage == "featurizer a list" else {"tools": 3})
        named = best / "featurizer.json"
    if command == "chat":
        args = ["-m", "dexter_brain.cli", "chat", "--models-dir", str(models), "--device", "cpu", "--quiet"]
    else:
        args = ["-m", "pipelines.evaluate_trms", "--models-dir", str(models), "--datasets-dir",
                str(tiny_brain["data"]), "--no-calibrate", "--no-plots", "--latency-samples", "1", "--quiet"]
    line = error_line(run(args, cwd=tmp_path, stdin="/quit\n"))
    assert line.startswith(f"error: {named}: ")


# --- runs that cannot be resumed ------------------------------------------------------------------------------
@pytest.fixture
def other_corpus(travel_corpora, tmp_path) -> tuple[Path, dict]:
    """A copy of the travel corpus: another corpus than the one the tiny brain was trained on."""
    shutil.copytree(travel_corpora[0], tmp_path / "travel")
    return tmp_path / "travel", read_json(tmp_path / "travel" / "manifest.json")


def resume_hint(last: Path, trained_on: str, training_on: str) -> str:
    return (f"error: {last} was trained on another corpus (fingerprint {trained_on[:12]}, this corpus "
            f"{training_on[:12]}): start afresh (train: --no-resume; build: without --resume), or train into "
            f"another --models-dir")


def train_args(models: Path, data: Path, *more: str) -> list[str]:
    """``train_all_trms`` of the tool TRM with the tiny brain's own training settings (its train_config.json)."""
    return ["-m", "pipelines.train_all_trms", "--data", str(data), "--models-dir", str(models), "--trm", "tool",
            "--config", str(models / "tool" / "train_config.json"), "--quiet", *more]


def no_traceback(done: subprocess.CompletedProcess) -> list[str]:
    """The stdout lines of a command that succeeded without a traceback."""
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_train_on_a_new_corpus_keeps_the_old_run_and_starts_afresh_in_one_line(tiny_brain, other_corpus, tmp_path):
    data, manifest = other_corpus
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    trained_on = read_json(models / "tool" / "last" / "meta.json")["corpus_fingerprint"]
    old_best = (models / "tool" / "best" / "model.safetensors").read_bytes()
    lines = no_traceback(run(train_args(models, data), cwd=tmp_path))
    last = models / "tool" / "last"
    assert lines[0] == (f"tool: {last} was trained on another corpus (fingerprint {trained_on[:12]}, this corpus "
                        f"{manifest['fingerprint'][:12]}): starting afresh (the old run is kept in "
                        f"{models / 'tool' / 'old_run'})")
    assert lines[1].startswith("tool: 8 steps in ") and len(lines) == 2
    assert read_json(last / "meta.json")["corpus_fingerprint"] == manifest["fingerprint"]
    assert (models / "tool" / "old_run" / "best" / "model.safetensors").read_bytes() == old_best
    # The same command again resumes the new run, which has finished: one line says so.
    lines = no_traceback(run(train_args(models, data), cwd=tmp_path))
    assert lines == [f"tool: the run in {last} already finished at step 8 (max_steps 8): nothing to train "
                     f"(--no-resume trains it again)"]


def test_train_a_model_of_another_shape_starts_afresh_naming_the_weights(tiny_brain, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    # --quick trains a 64-wide model; the tiny brain's last/ holds a 32-wide one trained on the same corpus.
    done = run(["-m", "pipelines.train_all_trms", "--data", str(tiny_brain["data"]), "--models-dir", str(models),
                "--trm", "tool", "--quick", "--max-steps", "4", "--quiet"], cwd=tmp_path)
    first = no_traceback(done)[0]
    last = models / "tool" / "last"
    assert first.startswith(f"tool: {last / 'model.safetensors'}: the run in {last} does not fit the model being "
                            f"trained (")
    assert first.endswith(f"): starting afresh (the old run is kept in {models / 'tool' / 'old_run'})")


def test_train_flags_that_make_no_config_are_one_line(tiny_brain, tmp_path):
    done = run(["-m", "pipelines.train_all_trms", "--data", str(tiny_brain["data"]), "--models-dir",
                str(tmp_path / "models"), "--trm", "tool", "--quick", "--max-steps", "2", "--quiet"], cwd=tmp_path)
    assert error_line(done) == "error: warmup_steps (2) must be below max_steps (2)"


def test_train_init_from_a_checkpoint_of_the_same_vocabulary_says_so(tiny_brain, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    data = tmp_path / "data"  # the same corpus under another fingerprint: same vocabulary, another corpus
    shutil.copytree(tiny_brain["data"], data)
    manifest = read_json(data / "manifest.json")
    manifest["fingerprint"] = "0" * 64
    (data / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    lines = no_traceback(run(train_args(models, data, "--init-from", str(tiny_brain["models"])), cwd=tmp_path))
    assert lines[0].endswith(f"starting afresh (the old run is kept in {models / 'tool' / 'old_run'}); initialised "
                             f"from {tiny_brain['models'] / 'tool'} (same vocabulary and model shape)")
    assert read_json(models / "tool" / "last" / "meta.json")["init_from"] == str(tiny_brain["models"] / "tool")


def test_train_init_from_a_checkpoint_of_another_vocabulary_is_one_line(tiny_brain, other_corpus, tmp_path):
    data, manifest = other_corpus
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    before = sorted(p.name for p in (models / "tool").iterdir())
    line = error_line(run(train_args(models, data, "--init-from", str(tiny_brain["models"] / "tool" / "best")),
                          cwd=tmp_path))
    assert line.startswith(f"error: --init-from {tiny_brain['models'] / 'tool' / 'best'}: it was trained with another "
                           f"vocabulary (tokenizer sha256 ")
    assert line.endswith(f"this corpus {manifest['vocab']['sha256'][:12]}): its token embeddings would mean other "
                         f"words; train without --init-from to start afresh")
    assert sorted(p.name for p in (models / "tool").iterdir()) == before  # nothing moved


def test_build_resume_after_the_corpus_changed_refuses_to_resume(tiny_brain, other_corpus, tmp_path):
    data, manifest = other_corpus
    raw = make_travel_raw(tmp_path / "raw")
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    # A build that generated its corpora, then the corpora were regenerated from other data before --resume.
    settings = build_settings(raw, data, device="auto", seed=0, quick=True)
    BuildState(models / STATE_FILE, settings, resume=False).finish("generate", 1.0)
    done = run([BUILD, "--raw", str(raw), "--datasets-dir", str(data), "--models-dir", str(models), "--quick",
                "--resume", "--quiet"], cwd=tmp_path)
    trained_on = read_json(models / "memory" / "last" / "meta.json")["corpus_fingerprint"]
    assert error_line(done) == resume_hint(models / "memory" / "last", trained_on, manifest["fingerprint"])
    assert json.loads((models / STATE_FILE).read_text(encoding="utf-8"))["settings"] == settings


def test_build_resume_after_other_settings_starts_the_training_over(tiny_brain, tmp_path):
    raw = make_travel_raw(tmp_path / "raw")
    data, models = tmp_path / "datasets", tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    # The models directory holds another build (here: another seed); --resume must not continue its last/.
    BuildState(models / STATE_FILE, build_settings(raw, data, seed=1, quick=True), resume=False).finish("generate", 1.0)
    done = run([BUILD, "--raw", str(raw), "--datasets-dir", str(data), "--models-dir", str(models), "--quick",
                "--resume", "--quiet"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the previous build used other settings; starting over" in done.stderr
    fingerprint = read_json(data / "manifest.json")["fingerprint"]
    for kind in ("memory", "tool", "reasoning"):
        meta = read_json(models / kind / "last" / "meta.json")
        assert meta["corpus_fingerprint"] == fingerprint and meta["step"] == 20  # the quick budget, from step 0
