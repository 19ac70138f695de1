"""Tests of dexter_brain.evaluation: the metrics on hand-made cases, the baselines on tiny hand-made data
with known answers, calibration on the tiny brain, and the whole evaluation end to end.

Run: python -m pytest tests/test_evaluation.py -q
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dexter_brain.evaluation import MEMORY_KEYS, REASONING_KEYS, TOOL_KEYS, calibrate_brain, evaluate_brain
from dexter_brain.evaluation.baselines import (
    BM25Memory, BM25Tools, KnnTools, LinearTools, NearestPlan, PriorTools,
)
from dexter_brain.evaluation.calibration import best_abstain_threshold, categorical_nll
from dexter_brain.evaluation.measures import ranking_metrics, recall_curve, same_step, targets, top_k_accuracy
from dexter_brain.evaluation.replay import replay_tool
from dexter_brain.io import read_rows
from dexter_brain.metrics import expected_calibration_error, reliability_bins, step_f1
from dexter_brain.wrappers.common import Calibration
from dexter_brain.wrappers.tool import ToolTRM


# --- metrics on hand-made cases --------------------------------------------------------------------------
def test_recall_and_mrr_on_a_known_ranking():
    ranking = ["a", "b", "c", "d", "e", "f"]
    m = ranking_metrics([ranking, ["x", "y"]], [["b", "f"], ["y"]])
    # Row 1: b at rank 2 (f beyond 5): recall@1 0, recall@5 1/2, RR 1/2. Row 2: y at rank 2: 0, 1, 1/2.
    assert m == {"recall@1": 0.0, "recall@5": 0.75, "mrr": 0.5}
    assert recall_curve([ranking], [["b", "f"]])[:6] == [0.0, 0.5, 0.5, 0.5, 0.5, 1.0]
    assert ranking_metrics([], [])["recall@5"] is None


def test_top_k_accuracy():
    rankings = [["t1", "t2", "t3"], ["t2", "t1", "t3"], ["t3", "t2", "t1"]]
    assert top_k_accuracy(rankings, ["t1", "t1", "t1"], 1) == pytest.approx(0.3333, abs=1e-4)
    assert top_k_accuracy(rankings, ["t1", "t1", "t1"], 2) == pytest.approx(0.6667, abs=1e-4)
    assert top_k_accuracy(rankings, ["t1", "t1", "t1"], 3) == 1.0


def test_ece_on_known_bins():
    confidence, correct = [0.9, 0.9, 0.2, 0.2], [True, False, False, False]
    # Bin (0.8, 0.9]: accuracy 0.5 vs 0.9; bin (0.1, 0.2]: 0.0 vs 0.2; each holds half the calls.
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.2)
    assert reliability_bins(confidence, correct) == [(0.2, 0.0, 2), (0.9, 0.5, 2)]
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0


def test_step_f1_is_order_aware():
    reference = ["search flights", "reserve a hotel room", "buy travel insurance"]
    assert step_f1(reference, reference) == 1.0
    # Reversed: only one step can be matched in order -> precision = recall = 1/3.
    assert step_f1(list(reversed(reference)), reference) == pytest.approx(1 / 3)
    # Near-identical wording matches (content-word F1 >= 0.5); an extra step costs precision.
    assert step_f1(["search for flights", "reserve hotel room", "buy insurance", "pack"], reference) == \
        pytest.approx(2 * (3 / 4) * 1 / (3 / 4 + 1))
    assert step_f1([], reference) == 0.0


@pytest.mark.parametrize("predicted, reference, expected", [
    ("Book the Hotel.", "book the hotel", True), ("book hotel", "book the hotel", False),
    (None, None, True), ("book the hotel", None, False), (None, "book the hotel", False),
])
def test_next_step_exact(predicted, reference, expected):
    assert same_step(predicted, reference) is expected


def test_targets_compare_with_reference_and_margin():
    report = {"memory": {"recall@5": 0.62, "bm25_recall@5": 0.5, "floor_recall@5": 0.63,
                         "followup_recall@5": None, "followup_recall@5_stateless": 0.1},
              "tool": {"top1": 0.95, "bm25_top1": 0.8, "linear_top1": 0.9, "correction_top1": 0.5,
                       "unseen_top1": 0.7, "bm25_unseen_top1": 0.7},
              "reasoning": {"step_f1": 0.3, "nn_step_f1": 0.2}}
    by = {(t["metric"], t["reference"]): t for t in targets(report)}
    assert by[("memory.recall@5", "memory.bm25_recall@5")]["met"] is True          # 0.62 >= 0.60
    assert by[("memory.recall@5", "memory.bm25_recall@5")]["bar"] == 0.6
    assert by[("memory.recall@5", "memory.floor_recall@5")]["met"] is False
    assert by[("tool.unseen_top1", "tool.bm25_unseen_top1")]["met"] is True             # equal meets it
    assert by[("memory.followup_recall@5", "memory.followup_recall@5_stateless")]["met"] is False
    assert "reason" in by[("memory.followup_recall@5", "memory.followup_recall@5_stateless")]
    assert by[("tool.top1", None)]["met"] is True and by[("tool.top1", "tool.bm25_top1")]["met"] is True
    assert by[("tool.correction_top1", None)]["met"] is False
    assert by[("reasoning.step_f1", "reasoning.nn_step_f1")]["met"] is True


# --- baselines on hand-made data -------------------------------------------------------------------------
FACTS = [
    {"id": "f1", "text": "The dentist appointment is on Tuesday", "source": "t"},
    {"id": "f2", "text": "Maya's favourite colour is teal", "source": "t"},
    {"id": "f3", "text": "The car insurance renews in March", "source": "t"},
    {"id": "f4", "text": "The appointment with the accountant is on Friday", "source": "t"},
    {"id": "f5", "text": "Maya plays the cello on Tuesday", "source": "t"},
]


def test_bm25_memory_ranks_the_fact_with_the_rare_word_first():
    bm25 = BM25Memory(FACTS)
    assert bm25.rank("when is the dentist appointment?")[0] == "f1"
    assert bm25.rank("what colour does maya like?")[0] == "f2"
    assert bm25.rank("the and of") == []  # stop words only: nothing shares a word


TOOL_TRAIN = [
    {"task": "play some jazz", "context": "", "tool": "media.play", "status": "success"},
    {"task": "play the new album", "context": "", "tool": "media.play", "status": "success"},
    {"task": "play a podcast episode", "context": "", "tool": "podcast.play", "status": "success"},
    {"task": "send an email to Sam", "context": "", "tool": "email.send", "status": "success"},
    {"task": "email the report to the team", "context": "", "tool": "email.send", "status": "success"},
    {"task": "send a text to Sam", "context": "", "tool": "messages.send", "status": "success"},
    {"task": "what is the weather tomorrow", "context": "", "tool": "weather.get", "status": "success"},
    {"task": "play some jazz", "context": "", "tool": "weather.get", "status": "error"},  # failures never vote
]
TOOL_TRAIN = [{**r, "available": ["media.play", "podcast.play", "email.send", "messages.send", "weather.get"]}
              for r in TOOL_TRAIN]


def test_knn_returns_the_neighbours_tool_among_the_available():
    knn = KnnTools(TOOL_TRAIN, neighbours=1)
    assert knn.rank("play jazz please", ["email.send", "media.play", "weather.get"])[0] == "media.play"
    # The nearest task's tool is not offered: the nearest available one wins, and only offered tools appear.
    ranking = knn.rank("play jazz please", ["email.send", "podcast.play"])
    assert ranking[0] == "podcast.play" and set(ranking) == {"email.send", "podcast.play"}


def test_prior_ranks_by_logged_successes():
    assert PriorTools(TOOL_TRAIN).rank(["weather.get", "email.send", "unknown.tool"]) == \
        ["email.send", "weather.get", "unknown.tool"]


def test_bm25_tools_reads_names_and_descriptions():
    bm25 = BM25Tools({"weather.get": "Current conditions and the forecast", "email.send": "Send an email",
                      "media.play": "Play music"})
    assert bm25.rank("what's the forecast", ["email.send", "weather.get"])[0] == "weather.get"
    assert bm25.rank("send it by email", ["weather.get", "email.send", "media.play"])[0] == "email.send"


def test_linear_tools_never_return_an_unavailable_tool():
    linear = LinearTools.fit(TOOL_TRAIN, TOOL_TRAIN[:3])
    rows = [{"task": "play some jazz", "available": ["email.send", "weather.get"]},
            {"task": "play some jazz", "available": ["email.send", "media.play", "never.logged"]},
            {"task": "email Sam", "available": ["never.logged", "email.send"]}]
    rankings = linear.rank_many(rows)
    assert [set(r) for r in rankings] == [set(row["available"]) for row in rows]
    assert rankings[1][0] == "media.play" and rankings[1][-1] == "never.logged"
    assert rankings[2][0] == "email.send"
    assert linear.c in (1.0, 10.0, 100.0)


def test_nearest_plan_copies_and_adapts_the_nearest_goal():
    nn = NearestPlan([{"goal": "Plan a trip to Lisbon", "steps": ["book flights to Lisbon", "book a hotel"]},
                      {"goal": "Bake bread", "steps": ["make the dough", "bake"]}])
    assert nn.plan("plan a trip to Rome") == ["book flights to Lisbon", "book a hotel"]
    assert nn.next_step("plan a trip to Rome", ["book flights to Lisbon"]) == "book a hotel"
    assert nn.next_step("plan a trip to Rome", ["a", "b"]) is None
    adapted = NearestPlan(nn.plans, adapt=True)
    assert adapted.plan("Plan a trip to Rome") == ["book flights to Rome", "book a hotel"]
    assert nn.plan("zebra") == []


# --- calibration -----------------------------------------------------------------------------------------
def test_categorical_nll_and_abstain_threshold_on_hand_cases():
    logits = [np.array([2.0, 0.0]), np.array([0.0, 2.0])]
    correct = [np.array([True, False]), np.array([True, False])]
    nll = categorical_nll(logits, correct, temperatures=[1.0, 1e6])
    assert nll[0] == pytest.approx(0.5 * (np.log1p(np.exp(-2)) + np.log1p(np.exp(2))))
    assert nll[1] == pytest.approx(np.log(2), abs=1e-5)  # a huge temperature gives the uniform guess
    conf = np.array([0.9, 0.8, 0.3, 0.2])
    assert best_abstain_threshold(conf, np.zeros(4, bool), np.array([False, False, True, True])) == \
        pytest.approx(0.3 + 1e-9)
    assert best_abstain_threshold(conf, np.zeros(4, bool), np.zeros(4, bool)) == 0.0


@pytest.fixture
def brain_copy(tiny_brain, tmp_path):
    """The tiny brain's models copied into tmp_path: calibration writes into the checkpoints."""
    shutil.copytree(tiny_brain["models"], tmp_path / "models")
    return {**tiny_brain, "models": tmp_path / "models"}


def _val_nll(models, data) -> float:
    tool = ToolTRM.from_checkpoint(models / "tool", device="cpu")
    rows = read_rows(data, "tool", "val")
    outs = replay_tool(tool, rows)
    probs = [dict(zip(o["ranking"], o["probs"]))[r["tool"]] for o, r in zip(outs, rows)
             if r["scored"] and r["status"] == "success"]
    return float(-np.mean(np.log(np.maximum(probs, 5e-7))))


def test_calibration_writes_a_readable_file_that_keeps_or_lowers_val_nll(brain_copy):
    models, data = brain_copy["models"], brain_copy["data"]
    before = _val_nll(models, data)
    result = calibrate_brain(models, data, show_progress_bar=False)
    for kind in ("memory", "tool", "reasoning"):
        assert "reason" not in result[kind], result[kind]
        cal = Calibration.from_dir(models / kind / "best")
        assert cal.temperature == result[kind]["temperature"] > 0
        assert 0.0 <= cal.ece <= 1 and 0.0 <= cal.ece_uncalibrated <= 1 and 0.0 <= cal.abstain_below <= 1
        assert result[kind]["nll"] <= result[kind]["nll_uncalibrated"] + 1e-9
    assert _val_nll(models, data) <= before + 1e-4


# --- end to end ------------------------------------------------------------------------------------------
def test_evaluate_brain_end_to_end(brain_copy, tmp_path):
    models, data = brain_copy["models"], brain_copy["data"]
    report = evaluate_brain(models, data, build_seconds={"generate": 1.5, "train": 3.0}, out_dir=tmp_path / "out",
                            show_progress_bar=False, latency_samples=3)
    for kind, keys in (("memory", MEMORY_KEYS), ("tool", TOOL_KEYS), ("reasoning", REASONING_KEYS)):
        assert "reason" not in report[kind], report[kind]
        for key in keys:
            assert key in report[kind]
            assert report[kind][key] is None or 0.0 <= report[kind][key] <= 1.0, (kind, key)
        assert 0.0 <= report["calibration"][kind] <= 1.0
        # The tiny models recurse at most 3 supervision steps, none when the floor scores alone.
        residual = report[kind]["residual"]
        assert 1.0 <= report["steps"][kind] <= 3.0 if residual else report["steps"][kind] == 0.0
        assert report["size_mb"][kind] > 0 and report["parameters"][kind] > 0
        assert (models / kind / "best" / "calibration.json").exists()
    assert report["memory"]["recall@5"] is not None and report["tool"]["top1"] is not None
    assert report["memory"]["recall@1"] <= report["memory"]["recall@5"]
    assert report["tool"]["top1"] <= report["tool"]["top3"]
    assert report["size_mb"]["total"] == pytest.approx(sum(report["size_mb"][k] for k in
                                                           ("memory", "tool", "reasoning")), abs=1e-3)
    assert set(report["latency_ms"]) == {"retrieve", "select_tool", "plan", "next_step"}
    assert all(v > 0 for v in report["latency_ms"].values())
    seconds = report["build_seconds"]
    assert seconds["total"] == pytest.approx(1.5 + 3.0 + seconds["evaluate"], abs=0.02)
    assert report["fingerprint"] == json.loads((data / "manifest.json").read_text())["fingerprint"]
    assert len(report["targets"]) == 11 and all(isinstance(t["met"], bool) for t in report["targets"])

    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert written["tool"] == report["tool"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert markdown.startswith("# dexter-brain evaluation report")
    assert "## Headline" in markdown and "| Memory recall@5 |" in markdown and "targets met" in markdown
    for plot in report["plots"]:
        assert (tmp_path / "out" / plot).stat().st_size > 0
    assert not (models / "report.md").exists()
    pytest.importorskip("matplotlib")
    assert {"recall_at_k.png", "reliability_tool.png", "steps.png", "latency.png"} <= set(report["plots"])


def test_max_rows_caps_what_calibration_and_evaluation_read(brain_copy):
    models, data = brain_copy["models"], brain_copy["data"]
    fitted = calibrate_brain(models, data, kinds=("tool",), show_progress_bar=False, max_rows=5)
    assert fitted["tool"]["n"] <= 5 < len(read_rows(data, "tool", "val"))
    report = evaluate_brain(models, data, show_progress_bar=False, latency_samples=1, plots=False, calibrate=False,
                            max_rows=6)
    assert report["data"]["max_rows"] == 6
    assert {kind: rows["rows"] for kind, rows in report["data"]["test_rows"].items()} == {
        "memory": 6, "tool": 6, "reasoning": 6}


def test_evaluate_brain_reports_a_missing_model_with_a_reason(brain_copy, tmp_path):
    shutil.rmtree(brain_copy["models"] / "reasoning")
    shutil.rmtree(brain_copy["models"] / "memory")
    report = evaluate_brain(brain_copy["models"], brain_copy["data"], show_progress_bar=False, latency_samples=1,
                            plots=False)
    assert report["reasoning"]["step_f1"] is None and "no reasoning model" in report["reasoning"]["reason"]
    assert report["latency_ms"]["plan"] is None and report["size_mb"]["total"] == report["size_mb"]["tool"]
    assert report["tool"]["top1"] is not None
    assert (brain_copy["models"] / "report.md").exists()


def test_cli_help_and_errors(tmp_path, capsys):
    from pipelines.evaluate_trms import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "example:" in capsys.readouterr().out
    assert main(["--models-dir", str(tmp_path / "none"), "--datasets-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: no trained TRM in {tmp_path / 'none'} (expected memory/")


def test_cli_evaluates_on_a_raw_directory(brain_copy, tmp_path, capsys):
    from pipelines.evaluate_trms import main

    shutil.rmtree(brain_copy["models"] / "reasoning")
    code = main(["--models-dir", str(brain_copy["models"]), "--datasets-dir", str(brain_copy["data"]),
                 "--raw", str(brain_copy["raw"]), "--out", str(tmp_path / "raw_report"), "--no-calibrate",
                 "--latency-samples", "1", "--no-plots", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| Memory recall@5 |" in out and f"wrote {tmp_path / 'raw_report' / 'report.md'}" in out
    report = json.loads((tmp_path / "raw_report" / "report.json").read_text())
    assert report["data"]["raw_dir"] == str(brain_copy["raw"])
    assert report["command"].startswith("python -m pipelines.evaluate_trms --models-dir")
    # --no-calibrate: nothing was written into the checkpoints.
    assert not (brain_copy["models"] / "tool" / "best" / "calibration.json").exists()
    # The same raw directory mined with the same settings gives the same test split.
    assert report["fingerprint"] == json.loads((brain_copy["data"] / "manifest.json").read_text())["fingerprint"]
    assert report["memory"]["recall@5"] is not None and report["reasoning"]["reason"].startswith("no reasoning model")
