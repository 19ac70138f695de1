"""Tests for dexter_brain.learn, dexter_brain.corpora.extend and ``dexter-brain learn``, on copies of the session's
tiny brain with feedback recorded through the real wrappers:

- feedback that repeats useful signal (questions the brain misses, with the fact that answers them; a tool the
  logs never used, by tasks its name does not match; a plan for a goal never stored) is promoted, and the
  promoted brain answers new variants of those questions better; the user's memory bank keeps every fact;
- a harmful feedback set (a wrong tool logged as working for the validation tasks) is kept out by the gate;
- ``rollback`` restores the previous weights byte for byte (and a second one re-applies them);
- a swap cut short between renames is completed or undone;
- the command runs as a subprocess with a before/after table, and every error path is one line.

Run: python -m pytest tests/test_learn.py -q   (about a minute on 2 cores: three learns of the tiny brain)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dexter_brain import UnifiedConsciousness
from dexter_brain.checkpoint import CheckpointError, load_checkpoint, read_meta
from dexter_brain.cli import main
from dexter_brain.corpora.extend import NEW_VAL_FRACTION, extend_corpus, is_new
from dexter_brain.io import read_json, read_jsonl, read_rows
from dexter_brain.learn import LEARNED_FILE, LearnError, gate, learn, promote, recover, rollback, sign_test
from dexter_brain.wrappers.memory import MAX_K

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("memory", "tool", "reasoning")
VARIANTS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet".split()
NEW_TOOL = "home.run_sprinkler_zone"
NEW_GOAL = "Renew the car insurance"
NEW_STEPS = ["compare insurance quotes", "check the no claims bonus", "pay the premium", "file the new certificate"]
GARDEN_TASKS = ["water the tomatoes", "give the vegetable beds a drink", "soak the lawn tonight"]


def models_copy(source: Path, directory: Path) -> Path:
    """A brain of the test's own: its bank, its feedback directory, its learn runs."""
    shutil.copytree(source, directory, ignore=shutil.ignore_patterns("bank.sqlite*", "feedback", "learn"))
    return directory


def files_of(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def tools_offered(tiny_brain) -> list[str]:
    catalogue = [t["name"] for t in read_jsonl(tiny_brain["data"] / "tool" / "catalogue.jsonl")]
    return [*catalogue[:8], NEW_TOOL]


def missed_questions(brain: UnifiedConsciousness, tiny_brain) -> list[dict]:
    """Validation and test questions (not follow-ups) whose fact the current brain ranks among its candidates but
    below the top 5 (a fact no word of the question reaches is never a candidate: no ranking can find it)."""
    rows = [r for s in ("val", "test") for r in read_rows(tiny_brain["data"], "memory", s)
            if r["positives"] and not r["is_followup"]]
    missed = []
    for r in rows:
        ranked = [m["id"] for m in brain.memory.retrieve(r["query"], k=MAX_K, conversation_id=f"probe-{r['id']}")
                  ["memories"]]
        if r["positives"][0] in ranked[5:]:
            missed.append(r)
    return missed


def record_useful_feedback(brain: UnifiedConsciousness, tiny_brain) -> list[dict]:
    """Users ask, many times over, what the brain gets wrong today, and say what the right answer was."""
    missed = missed_questions(brain, tiny_brain)
    assert missed, "the tiny brain must miss some question for the memory feedback to teach it anything"
    for r in missed:
        for word in VARIANTS:
            cid = f"fb-{r['id']}-{word}".replace(":", "-")
            brain.memory.retrieve(f"{r['query']} {word}", conversation_id=cid)
            brain.memory.feedback(cid, used=[r["positives"][0]])
    offered = tools_offered(tiny_brain)
    for task in GARDEN_TASKS:
        for word in VARIANTS:
            brain.tool.record_outcome(f"{task} {word}", NEW_TOOL, "success", conversation_id=f"t-{task}-{word}"
                                      .replace(" ", "-"), available_tools=offered)
    for word in VARIANTS:
        brain.reasoning.record_outcome(f"{NEW_GOAL} {word}", NEW_STEPS, True)
    return missed


@pytest.fixture(scope="module")
def learned(tiny_brain, tmp_path_factory) -> dict:
    """A copy of the tiny brain with useful feedback in models/feedback, after one learn (read only)."""
    root = tmp_path_factory.mktemp("learned")
    models = models_copy(tiny_brain["models"], root / "models")
    original = {kind: files_of(models / kind / "best") for kind in KINDS}
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    brain.memory.add_memory("The gate code for the allotment is 4417", id="live-1")  # the user's live store
    missed = record_useful_feedback(brain, tiny_brain)
    bank_before = set(brain.memory.bank.ids())
    del brain
    summary = learn(models, data_dir=tiny_brain["data"], show_progress_bar=False)
    return {"models": models, "summary": summary, "original": original, "missed": missed, "bank": bank_before}


# --- learning from useful feedback -----------------------------------------------------------------------------
def test_useful_feedback_is_promoted_and_the_new_examples_are_answered_better(learned, tiny_brain):
    summary, models = learned["summary"], learned["models"]
    for kind in KINDS:
        info = summary["kinds"][kind]
        assert info["status"] == "promoted", (kind, info)
        assert info["start"] == "initialised" and info["new"]["train"] > 0 and info["new"]["val"] > 0
        for metric, parts in info["metrics"].items():
            assert parts["all"]["after"] >= parts["all"]["before"], (kind, metric, parts)
            assert not gate({metric: parts}), (kind, metric, parts)
        primary = next(iter(info["metrics"].values()))["new"]
        assert primary["n"] > 0 and primary["after"] > primary["before"], (kind, primary)
        # The replaced weights are previous/, byte for byte; best/ is the candidate, with its provenance.
        assert files_of(models / kind / "previous") == learned["original"][kind]
        meta = read_meta(models / kind / "best")
        assert meta["init_from"] == str(models / kind / "best") and LEARNED_FILE in meta["files"]
        assert read_json(models / kind / "best" / LEARNED_FILE)["run"] == Path(summary["run_dir"]).name
        assert (models / kind / "best" / "calibration.json").is_file()

    # Variants never seen in the feedback are answered as the users taught it.
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    for r in learned["missed"]:
        got = brain.memory.retrieve(f"{r['query']} zulu", conversation_id=f"after-{r['id']}")
        assert r["positives"][0] in [m["id"] for m in got["memories"]], r["query"]
    offered = tools_offered(tiny_brain)
    assert brain.tool.select_tool("water the tomatoes zulu", available_tools=offered)["selected_tool"] == NEW_TOOL
    assert brain.reasoning.plan(f"{NEW_GOAL} zulu")["plan_steps"] == NEW_STEPS


def test_learn_keeps_every_fact_of_the_users_bank(learned):
    brain = UnifiedConsciousness.from_dir(learned["models"], device="cpu")
    assert learned["bank"] <= set(brain.memory.bank.ids()) and "live-1" in learned["bank"]
    got = brain.memory.retrieve("what is the gate code for the allotment?")
    assert got["memories"][0]["id"] == "live-1"


def test_the_extended_corpus_holds_the_base_and_the_new_examples(learned, tiny_brain):
    corpus, base = Path(learned["summary"]["corpus"]), tiny_brain["data"]
    assert read_json(corpus / "manifest.json")["vocab"] == read_json(base / "manifest.json")["vocab"]
    assert (corpus / "vocab" / "tokenizer.model").read_bytes() == (base / "vocab" / "tokenizer.model").read_bytes()
    for kind in KINDS:
        old = {r["id"]: r for s in ("train", "val", "test") for r in read_rows(base, kind, s)}
        rows = {s: read_rows(corpus, kind, s) for s in ("train", "val", "test")}
        assert {r["id"] for s in rows for r in rows[s] if not is_new(r["id"])} == set(old)
        assert not any(is_new(r["id"]) for r in rows["test"])  # the test split is the base's
        new = [r for s in ("train", "val") for r in rows[s] if is_new(r["id"])]
        groups = {r["group"]: r["split"] for r in new}
        assert all(groups[r["group"]] == r["split"] for r in new)  # a conversation lands wholly in one split
        held = sum(s == "val" for s in groups.values()) / len(groups)
        assert 0 < held < 3 * NEW_VAL_FRACTION
    # The featurizers' history includes the new training examples.
    past = {q for _, q, _ in read_json(corpus / "memory" / "featurizer.json")["past_queries"]}
    assert any(q.rsplit(" ", 1)[-1] in VARIANTS for q in past)
    assert NEW_GOAL.lower() in {p["goal"].lower().rsplit(" ", 1)[0]
                                for p in read_json(corpus / "reasoning" / "featurizer.json")["plans"]}


def test_learning_again_without_new_feedback_trains_nothing(learned, tmp_path):
    models = models_copy(learned["models"], tmp_path / "models")
    shutil.copytree(learned["models"] / "feedback", models / "feedback")
    shutil.copytree(learned["models"] / "learn", models / "learn")
    before = {kind: files_of(models / kind / "best") for kind in KINDS}
    summary = learn(models, data_dir=learned["summary"]["base_corpus"], show_progress_bar=False)
    run = Path(learned["summary"]["run_dir"]).name
    for kind in KINDS:
        assert summary["kinds"][kind]["status"] == "skipped"
        assert summary["kinds"][kind]["reason"] == f"no new feedback since the learn of {run} (--force learns again)"
        assert files_of(models / kind / "best") == before[kind]


# --- rollback ------------------------------------------------------------------------------------------------
def test_rollback_restores_the_previous_weights_byte_for_byte(learned, tmp_path):
    models = models_copy(learned["models"], tmp_path / "models")
    candidate = {kind: files_of(models / kind / "best") for kind in KINDS}
    assert rollback(models) == {kind: "rolled back" for kind in KINDS}
    for kind in KINDS:
        assert files_of(models / kind / "best") == learned["original"][kind]
        assert files_of(models / kind / "previous") == candidate[kind]
        load_checkpoint(models / kind)  # the sha256 records hold
    assert rollback(models, kinds=("tool",)) == {"tool": "rolled back"}  # and back again
    assert files_of(models / "tool" / "best") == candidate["tool"]
    shutil.rmtree(models / "memory" / "previous")
    shutil.rmtree(models / "reasoning" / "previous")
    shutil.rmtree(models / "tool" / "previous")
    with pytest.raises(LearnError, match="^nothing to roll back: no TRM in .* has a previous/"):
        rollback(models)


def checkpoint_dir(directory: Path, marker: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "marker").write_text(marker)
    return directory


@pytest.mark.parametrize("state, expected, action", [
    # A promotion: .best.incoming (copying), .best.next, previous/ -> .previous.trash, best/ -> previous/, ...
    ({"best": "A", "previous": "P", ".best.incoming": "C"}, {"best": "A", "previous": "P"},
     "removed an unfinished copy"),
    ({"best": "A", "previous": "P", ".best.next": "C"}, {"best": "A", "previous": "P"}, "undid a promotion"),
    ({"best": "A", ".previous.trash": "P", ".best.next": "C"}, {"best": "A", "previous": "P"}, "undid a promotion"),
    ({"previous": "A", ".previous.trash": "P", ".best.next": "C"}, {"best": "C", "previous": "A"},
     "completed a promotion or rollback"),
    ({"best": "C", "previous": "A", ".previous.trash": "P"}, {"best": "C", "previous": "A"}, ""),
    # A rollback: previous/ -> .best.next, best/ -> previous/, .best.next -> best/.
    ({"best": "C", ".best.next": "A"}, {"best": "C", "previous": "A"}, "undid a rollback"),
    ({"previous": "C", ".best.next": "A"}, {"best": "A", "previous": "C"}, "completed a promotion or rollback"),
])
def test_a_swap_cut_short_is_completed_or_undone(tmp_path, state, expected, action):
    kind_dir = tmp_path / "tool"
    for name, marker in state.items():
        checkpoint_dir(kind_dir / name, marker)
    assert recover(kind_dir) == action
    assert {p.name: (p / "marker").read_text() for p in kind_dir.iterdir()} == expected


def test_promote_refuses_a_candidate_whose_files_fail_their_record(tiny_brain, tmp_path):
    kind_dir = models_copy(tiny_brain["models"], tmp_path / "models") / "tool"
    candidate = tmp_path / "candidate"
    shutil.copytree(kind_dir / "best", candidate)
    (candidate / "featurizer.json").write_text("{}")
    before = files_of(kind_dir)
    with pytest.raises(CheckpointError, match="featurizer.json: its sha256 differs"):
        promote(kind_dir, candidate)
    assert files_of(kind_dir) == before and recover(kind_dir) == ""


# --- the gate ------------------------------------------------------------------------------------------------
def record_harmful_tool_feedback(tool, tiny_brain) -> None:
    """The validation tasks, reworded, logged as done by a wrong tool, and their right tool as failing."""
    rng = random.Random(0)
    for r in read_rows(tiny_brain["data"], "tool", "val"):
        others = [t for t in r["available"] if t != r["tool"]]
        if r["status"] != "success" or not others:
            continue
        wrong = rng.choice(others)
        for word in VARIANTS[:4]:
            cid = f"bad-{r['id']}-{word}".replace(":", "-")
            tool.record_outcome(f"{r['task']} {word}", r["tool"], "error", error="it did not work",
                                conversation_id=cid, available_tools=list(r["available"]))
            tool.record_outcome(f"{r['task']} {word}", wrong, "success", conversation_id=cid,
                                available_tools=list(r["available"]))


def test_harmful_feedback_is_not_promoted(tiny_brain, tmp_path):
    models = models_copy(tiny_brain["models"], tmp_path / "models")
    before = files_of(models / "tool")
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    record_harmful_tool_feedback(brain.tool, tiny_brain)
    summary = learn(models, data_dir=tiny_brain["data"], show_progress_bar=False)
    info = summary["kinds"]["tool"]
    original, new = info["metrics"]["top1"]["original"], info["metrics"]["top1"]["new"]
    assert info["status"] == "kept" and original["after"] < original["before"]
    # The wrong tool is what the new examples say, so the candidate does better on them; the old ones decide.
    assert new["after"] > new["before"]
    assert f"top1 is worse on the original validation ({original['worse']} rows worse, {original['better']} " \
           f"better: sign test p = " in info["reason"]
    assert original["worse"] > original["better"]
    assert files_of(models / "tool") == before  # nothing of the brain changed
    assert summary["kinds"]["memory"]["reason"] == summary["kinds"]["reasoning"]["reason"] == "no feedback"
    # The same feedback again is not tried again unless forced.
    again = learn(models, data_dir=tiny_brain["data"], show_progress_bar=False)
    assert again["kinds"]["tool"]["status"] == "skipped"


def test_the_gate_weighs_all_the_validation_and_guards_the_original_rows():
    def parts(before, after, n, worse, better):
        return {"before": before, "after": after, "n": n, "worse": worse, "better": better}

    # A row or two lost to noise on the original rows, a clear gain on the new ones: promoted.
    noise = {"recall@5": {"all": parts(0.71, 0.72, 88, 3, 5), "original": parts(0.76, 0.74, 52, 3, 2),
                          "new": parts(0.64, 0.68, 36, 0, 3)}}
    assert gate(noise) == []
    # Better on the new rows by forgetting the old ones: kept, even though the whole went up.
    forgetting = {"top1": {"all": parts(0.38, 0.51, 53, 14, 21), "original": parts(0.69, 0.21, 29, 14, 0),
                           "new": parts(0.0, 0.88, 24, 0, 21)}}
    assert gate(forgetting) == ["top1 is worse on the original validation (14 rows worse, 0 better: sign test "
                                "p = 0.000)"]
    dropped = {"step_f1": {"all": parts(0.27, 0.26, 8, 1, 0), "original": parts(0.16, 0.14, 6, 1, 0),
                           "new": parts(0.62, 0.62, 2, 0, 0)}}
    assert gate(dropped) == ["step_f1 dropped on the validation (0.270 -> 0.260)"]
    assert gate(dropped, tolerance=0.02) == []
    assert sign_test(0, 0) == 1.0 and sign_test(3, 0) == 0.125 and sign_test(5, 0) == 1 / 32


# --- the command ---------------------------------------------------------------------------------------------
def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dexter_brain.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_learn_command_prints_a_table_and_rolls_back(tiny_brain, tmp_path):
    models = models_copy(tiny_brain["models"], tmp_path / "models")
    (models / "build_state.json").write_text(json.dumps({"settings": {"datasets_dir": str(tiny_brain["data"]),
                                                                      "raw": str(tiny_brain["raw"])}}))
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    for task in GARDEN_TASKS:
        for word in VARIANTS:
            brain.tool.record_outcome(f"{task} {word}", NEW_TOOL, "success", available_tools=tools_offered(tiny_brain))
    done = run(["learn", "--models-dir", str(models), "--quiet"], cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"learned from {models / 'feedback'} in ")
    assert lines[1].split() == ["kind", "new", "metric", "validation", "original", "val", "new", "held-out", "promoted"]
    tool_line = next(line for line in lines if line.startswith("tool "))
    assert " top1 " in tool_line and tool_line.endswith("yes: no metric dropped")
    assert next(line for line in lines if line.startswith("memory ")).endswith("-: no feedback")
    done = run(["learn", "--models-dir", str(models), "--rollback", "--quiet"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["memory    no previous/", "tool      rolled back", "reasoning no previous/"]
    assert files_of(models / "tool" / "best") == files_of(tiny_brain["models"] / "tool" / "best")


def test_learn_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as done:
        main(["learn", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "example:\n  dexter-brain learn --models-dir models" in out and "--rollback" in out


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_every_error_of_learn_is_one_line(tiny_brain, tmp_path, capsys):
    models = models_copy(tiny_brain["models"], tmp_path / "models")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert one_error_line(capsys, ["learn", "--models-dir", str(empty)]) == (
        f"error: {empty} holds no trained TRM (memory/best, tool/best or reasoning/best): build the brain first "
        f"(python build_trm_brain.py)")
    assert one_error_line(capsys, ["learn", "--models-dir", str(models)]).startswith(
        f"error: feedback directory not found: {models / 'feedback'} (the feedback calls write it: ")
    (models / "feedback").mkdir()
    for kind in KINDS:
        (models / kind / "train_config.json").unlink()
    assert one_error_line(capsys, ["learn", "--models-dir", str(models)]) == (
        f"error: cannot tell which corpus {models} was built from (no build_state.json or train_config.json naming "
        f"one that exists): give --data DIR")
    assert one_error_line(capsys, ["learn", "--models-dir", str(models), "--data", str(empty)]) == (
        f"error: no corpus in {empty} (manifest.json or corpora.json missing): give the corpus the brain was built "
        f"from with --data DIR")
    assert one_error_line(capsys, ["learn", "--models-dir", str(models), "--rollback"]) == (
        f"error: nothing to roll back: no TRM in {models} has a previous/ (learn keeps the weights a promotion "
        f"replaced there)")
    # An empty feedback directory is nothing to learn, not an error.
    assert main(["learn", "--models-dir", str(models), "--data", str(tiny_brain["data"]), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith("nothing to learn: ")
    assert sorted(p.name for p in (models / "learn").iterdir()) == [".lock"]


def test_a_corpus_learn_made_is_not_a_base(learned, tmp_path, capsys):
    corpus = learned["summary"]["corpus"]
    models = models_copy(learned["models"], tmp_path / "models")
    (models / "feedback").mkdir()
    assert one_error_line(capsys, ["learn", "--models-dir", str(models), "--data", corpus]) == (
        f"error: {corpus} is a corpus learn made (it holds extended.json): give the corpus the brain was built from, "
        f"which learn extends with all the feedback each time")


def test_extend_corpus_of_a_feedback_directory_without_feedback_is_a_raw_store_error(tiny_brain, tmp_path):
    from dexter_brain.raw import RawStoreError

    (tmp_path / "feedback").mkdir()
    with pytest.raises(RawStoreError):
        extend_corpus(tiny_brain["data"], tmp_path / "feedback", tmp_path / "out")
