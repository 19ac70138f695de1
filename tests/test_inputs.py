"""Tests for dexter_brain.inputs: one input path per kind, for training and serving alike.

On the session's tiny brain: every validation row's tensors (written by the corpus build) equal what the
wrapper computes for the same request and conversation state (``inputs_for``); memory states are replayed
from the floor's own answers; tool training rows hide one fold of tools' history in a fifth of the rows; a
tool no log ever called is picked by its description while the model still knows every logged tool; a
catalogue of thousands of tools is shortlisted.

Run: python -m pytest tests/test_inputs.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from dexter_brain import MemoryTRM, ReasoningTRM, ToolTRM
from dexter_brain.features.tool import HISTORY_FEATURES
from dexter_brain.floor import LinearFloor
from dexter_brain.inputs.memory import MemoryState, replay_states
from dexter_brain.inputs.reasoning import ReasoningInputs
from dexter_brain.inputs.tool import CANDIDATE_FEATURES as TOOL_FEATURES
from dexter_brain.inputs.tool import MAX_CANDIDATES, UNSEEN_FOLDS, ToolInputs, ToolTensors
from dexter_brain.io import read_json, read_rows
from dexter_brain.schema import ToolExample


def tensors(tiny_brain, kind: str, split: str = "val") -> dict[str, np.ndarray]:
    return load_file(tiny_brain["data"] / "tensors" / f"{kind}_{split}.safetensors")


def assert_row_equal(served: np.ndarray, tensorized: np.ndarray, n: int) -> None:
    np.testing.assert_array_equal(served[0, :n], tensorized[:n])


# --- the serving batch is the training row ---------------------------------------------------------------
def test_memory_validation_rows_are_what_retrieve_scores(tiny_brain):
    memory = MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu")
    rows, arrays = read_rows(tiny_brain["data"], "memory", "val"), tensors(tiny_brain, "memory")
    y, z = memory.core.model.initial_state(1)
    previous: dict[str, str] = {}
    for n, row in enumerate(rows):
        # The conversation's state as the corpus build replayed it: its focus (stored) and previous query.
        focus = [memory.featurizer.facts[i]["id"] for i in arrays["focus_index"][n] if i >= 0]
        memory.core.carries.put(row["episode"], y[0], z[0], focus=focus, last_query=previous.get(row["episode"]))
        served = memory.inputs_for(row["query"], conversation_id=row["episode"])
        k = int((arrays["cand_index"][n] >= 0).sum())
        assert len(served["candidates"]) == k
        assert_row_equal(served["cand_index"], arrays["cand_index"][n], k)
        assert_row_equal(served["cand_feats"], arrays["cand_feats"][n], k)
        np.testing.assert_array_equal(served["query_feats"][0], arrays["query_feats"][n])
        np.testing.assert_array_equal(served["query_ids"][0], arrays["query_ids"][n])
        previous[row["episode"]] = row["query"]


def test_tool_validation_rows_are_what_select_tool_scores(tiny_brain):
    tool = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")
    names = tool.featurizer.names
    rows, arrays = read_rows(tiny_brain["data"], "tool", "val"), tensors(tiny_brain, "tool")
    assert rows
    for n, row in enumerate(rows):
        served = tool.inputs_for(row["task"], list(row["available"]), row["context"] or None,
                                 row["previous_error"], conversation_id=f"v{n}", failed_tool=row["previous_tool"])
        k = int((arrays["cand_index"][n] >= 0).sum())
        assert served["candidates"] == [names[i] for i in arrays["cand_index"][n][:k]]
        assert_row_equal(served["cand_feats"], arrays["cand_feats"][n], k)
        np.testing.assert_array_equal(served["query_feats"][0], arrays["query_feats"][n])
        np.testing.assert_array_equal(served["query_ids"][0], arrays["query_ids"][n])


def test_reasoning_validation_rows_are_what_plan_and_next_step_score(tiny_brain):
    reasoning = ReasoningTRM.from_checkpoint(tiny_brain["models"] / "reasoning", device="cpu")
    rows, arrays = read_rows(tiny_brain["data"], "reasoning", "val"), tensors(tiny_brain, "reasoning")
    bank = load_file(tiny_brain["data"] / "tensors" / "reasoning_bank.safetensors")["ids"]
    for n, row in enumerate(rows):
        served = reasoning.inputs_for(row["goal"], list(row["completed"]), next_mode=row["kind"] == "next",
                                      state=row["state"], constraints=list(row["constraints"]))
        k = int((arrays["cand_index"][n] >= 0).sum())
        assert len(served["candidates"]) == k
        texts = ReasoningInputs.candidate_texts(served["candidates"])
        np.testing.assert_array_equal(reasoning.core.encoder.candidates(texts), bank[arrays["cand_index"][n][:k]])
        assert_row_equal(served["cand_feats"], arrays["cand_feats"][n], k)
        np.testing.assert_array_equal(served["query_ids"][0], arrays["query_ids"][n])
        assert served["mode"][0] == arrays["mode"][n]


# --- memory states replayed as served ------------------------------------------------------------------------
def test_replay_states_start_each_turn_from_the_previous_answer():
    episodes = [[0, 1, 2], [3, 4]]
    queries = ["q0", "q1", "q2", "q3", "q4"]
    answers = {0: ["a", "b", "c", "d"], 1: ["e"], 2: [], 3: ["x", "y"], 4: ["z"]}
    asked = []

    def answer(rows, states):
        asked.append(list(rows))
        return [answers[r] for r in rows]

    states = replay_states(episodes, queries, answer)
    assert asked == [[0, 3], [1, 4], [2]]  # one turn position of every conversation at a time
    assert states[0] == states[3] == MemoryState()
    assert states[1] == MemoryState(("a", "b", "c"), "q0") and states[2] == MemoryState(("e",), "q1")
    assert states[4] == MemoryState(("x", "y"), "q3")


def test_memory_tensors_hold_the_state_the_shipped_floor_leaves(tiny_brain):
    # The focus of each validation row is the best facts the floor itself ranked for the previous turn.
    memory = MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu")
    floor = LinearFloor.from_json(read_json(tiny_brain["data"] / "tensors" / "memory_floor.json"))
    np.testing.assert_allclose(memory.core.model.floor.weight, floor.weight)
    rows, arrays = read_rows(tiny_brain["data"], "memory", "val"), tensors(tiny_brain, "memory")
    for n in range(1, len(rows)):
        if rows[n]["episode"] != rows[n - 1]["episode"]:
            assert (arrays["focus_index"][n] < 0).all()
            continue
        k = int((arrays["cand_index"][n - 1] >= 0).sum())
        scores = floor.scores(arrays["cand_feats"][n - 1][:k])
        best = arrays["cand_index"][n - 1][:k][np.argsort(-scores, kind="stable")[:3]]
        np.testing.assert_array_equal(arrays["focus_index"][n][: len(best)], best)


# --- tools -------------------------------------------------------------------------------------------------
def test_a_fifth_of_tool_training_rows_show_a_fold_of_tools_without_history(tiny_brain):
    train = load_file(tiny_brain["data"] / "tensors" / "tool_train.safetensors")
    history = [TOOL_FEATURES.index(c) for c in HISTORY_FEATURES if c != "fail_rate"]
    rows = read_rows(tiny_brain["data"], "tool", "train")
    featurizer = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu").featurizer
    plain = ToolTensors(ToolInputs(featurizer), [ToolExample.model_validate(r) for r in rows], training=False)
    hidden_rows = 0
    for n in range(len(rows)):
        k = int((train["cand_index"][n] >= 0).sum())
        feats = train["cand_feats"][n][:k, history]
        target = int(train["target"][n])
        if target >= 0 and not feats[target].any() and np.abs(plain.rows[n].feats[:, history]).sum() > 0:
            hidden_rows += 1
    assert 0 < hidden_rows < len(rows) / UNSEEN_FOLDS * 2


def test_a_tool_no_log_ever_called_wins_by_its_description(tiny_brain):
    tool = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")
    logged = sorted(tool.featurizer.calls)
    # The shipped model knows every logged tool, held-out ones included.
    trained = {r["tool"] for r in read_rows(tiny_brain["data"], "tool", "train")}
    reserved = read_json(tiny_brain["data"] / "manifest.json")["corpora"]["tool"]["reserved_tools"]
    assert trained <= set(logged) and set(reserved) <= set(tool.featurizer.catalogue)
    new = {"name": "lingo.translate_text", "description": "Translate a sentence or paragraph into another language"}
    r = tool.select_tool("translate this paragraph into another language please",
                         available_tools=[*logged[:6], new], conversation_id="t")
    assert r["selected_tool"] == "lingo.translate_text"
    assert "lingo.translate_text" not in tool.featurizer.calls


def test_thousands_of_tools_are_shortlisted_and_the_right_one_found(tiny_brain):
    tool = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")
    catalogue = [{"name": f"suite{i}.op{i}", "description": f"Performs internal operation number {i} on records"}
                 for i in range(2_000)]
    catalogue.insert(1_234, {"name": "weather.get_forecast", "description": "Get the weather forecast for a city"})
    r = tool.select_tool("what's the weather forecast for Paris tomorrow", available_tools=catalogue)
    assert r["selected_tool"] == "weather.get_forecast"
    assert len(r["ranking"]) == MAX_CANDIDATES
    assert {n for n, _ in r["ranking"]} <= {t["name"] for t in catalogue}
    with pytest.raises(ValueError, match="at most 10000"):
        tool.select_tool("x", available_tools=[f"t{i}" for i in range(10_001)])


def test_floor_only_wrappers_never_recurse(tiny_brain):
    tool = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")
    tool.core.model.use_residual = False
    calls = []
    tool.core.model.net.forward = lambda h: calls.append(1) or h
    with torch.inference_mode():
        r = tool.select_tool("play some music", available_tools=["media.play_music", "web.search"])
    assert r["steps"] == 0 and calls == []
