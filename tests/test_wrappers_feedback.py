"""Tests for the feedback calls of the wrappers (``MemoryTRM.feedback``, ``ToolTRM.record_outcome``,
``ReasoningTRM.record_outcome``) and of ``UnifiedConsciousness.feedback``, on copies of the session's tiny brain.

Each call lands in its file of the feedback directory (default ``<models_dir>/feedback``) in the raw-data format,
and ``RawStore.load`` reads it back; bad arguments are clear errors that write nothing; loading a brain writes
nothing; the app's raw directory is never written to.

Run: python -m pytest tests/test_wrappers_feedback.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dexter_brain import MemoryTRM, ReasoningTRM, ToolTRM, UnifiedConsciousness
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.feedback import MARKER, FeedbackError, FeedbackLog
from dexter_brain.io import read_jsonl
from dexter_brain.raw import RawStore

TOOLS = ["media.play_music", "media.set_volume", "web.search", "weather.get_forecast", "calendar.list_events"]
QUESTION = "What did I buy from John Lewis?"


def models_copy(tiny_brain, tmp_path: Path) -> Path:
    """A brain of the test's own (its bank, its feedback directory), from the tiny brain."""
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models, ignore=shutil.ignore_patterns("bank.sqlite*"))
    return models


def load(directory: Path) -> RawStore:
    return RawStore.load(directory, show_progress_bar=False)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def models(tiny_brain, tmp_path) -> Path:
    return models_copy(tiny_brain, tmp_path)


def a_plan_goal(tiny_brain) -> str:
    return next(r["goal"] for r in read_jsonl(tiny_brain["data"] / "reasoning" / "train.jsonl") if r["kind"] == "plan")


# --- MemoryTRM.feedback --------------------------------------------------------------------------------------
def test_memory_feedback_is_the_last_retrieve_with_its_refs_in_models_feedback(models):
    memory = MemoryTRM.from_checkpoint(models / "memory", device="cpu")
    assert not (models / "feedback").exists()  # loading writes nothing
    shown = [m["id"] for m in memory.retrieve(QUESTION, conversation_id="c1")["memories"]]
    memory.retrieve("and the other thing?", conversation_id="c2")
    recorded = memory.feedback("c1", used=[shown[1]], rejected=[shown[0]])
    assert recorded == {"conversation_id": "c1", "query": QUESTION, "used": [shown[1]], "rejected": [shown[0]]}
    memory.feedback("c2", used=[])  # nothing helped: a turn without refs

    directory = models / "feedback"
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith("brain.db-")) == [MARKER, "brain.db"]
    store = load(directory)
    assert store.report.problems == []
    (c1,), (c2,) = [c.messages for c in store.conversations]
    assert (store.conversations[0].id, c1.role, c1.content, c1.memory_refs) == ("c1", "user", QUESTION, (shown[1],))
    assert (store.conversations[1].id, c2.content, c2.memory_refs) == ("c2", "and the other thing?", ())
    stored = {f["id"]: f for f in memory.bank.facts()}
    # The facts named are copied, so that the directory alone resolves the refs.
    assert {f.id: f.text for f in store.facts} == {i: stored[i]["text"] for i in shown[:2]}
    with FeedbackLog(directory) as log:
        assert list(log.rejected_refs().values()) == [(shown[0],)]


def test_memory_feedback_goes_to_the_directory_given(models, tmp_path):
    memory = MemoryTRM.from_checkpoint(models / "memory", device="cpu", feedback_dir=tmp_path / "elsewhere")
    fact = memory.retrieve(QUESTION, conversation_id="c1")["memories"][0]["id"]
    memory.feedback("c1", used=[fact])
    assert not (models / "feedback").exists()
    assert load(tmp_path / "elsewhere").conversations[0].messages[0].memory_refs == (fact,)
    # Without carry there is no last retrieve: the query is given.
    stateless = MemoryTRM.from_checkpoint(models / "memory", device="cpu", use_carry=False,
                                          feedback_dir=tmp_path / "elsewhere")
    stateless.retrieve(QUESTION, conversation_id="c9")
    with pytest.raises(ValueError, match="^conversation 'c9' has no retrieve to give feedback on .*kept only with "
                                         "carry.*pass query=$"):
        stateless.feedback("c9", used=[fact])
    assert stateless.feedback("c9", used=[fact], query="who sold me the lamp?")["query"] == "who sold me the lamp?"


@pytest.mark.parametrize("args, error, message", [
    (dict(conversation_id="never", used=["x"]), ValueError, "unknown memory id(s) 'x': feedback names facts stored"),
    (dict(conversation_id="c1"), ValueError, "give used=[fact ids] (the facts that helped; [] when none did) and/or"),
    (dict(conversation_id="c1", used="f1"), TypeError, "used must be a list of ids, got str"),
    (dict(conversation_id="c1", used=[3]), ValueError, "used[0] must be a non-empty string, got 3"),
    (dict(conversation_id="", used=[]), TypeError, "conversation_id must be a non-empty string, got ''"),
    (dict(conversation_id="never", used=[]), ValueError, "conversation 'never' has no retrieve to give feedback on"),
], ids=["unknown-id", "nothing", "string", "not-a-string", "empty-conversation", "no-retrieve"])
def test_memory_feedback_rejects_bad_arguments_and_writes_nothing(models, args, error, message):
    memory = MemoryTRM.from_checkpoint(models / "memory", device="cpu")
    memory.retrieve(QUESTION, conversation_id="c1")
    with pytest.raises(error) as raised:
        memory.feedback(**args)
    assert str(raised.value).startswith(message), str(raised.value)
    assert not (models / "feedback").exists()


def test_memory_feedback_with_a_fact_both_used_and_rejected_is_an_error(models):
    memory = MemoryTRM.from_checkpoint(models / "memory", device="cpu")
    fact = memory.retrieve(QUESTION, conversation_id="c1")["memories"][0]["id"]
    with pytest.raises(ValueError, match=f"^memory id\\(s\\) '{fact}' are both used and rejected$"):
        memory.feedback("c1", used=[fact], rejected=[fact])


def test_feedback_never_goes_into_the_raw_directory(tiny_brain, models, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_brain["raw"], raw)
    before = snapshot(raw)
    memory = MemoryTRM.from_checkpoint(models / "memory", device="cpu", feedback_dir=raw)
    fact = memory.retrieve(QUESTION, conversation_id="c1")["memories"][0]["id"]
    with pytest.raises(FeedbackError, match=f"^feedback directory {raw} holds raw files no feedback log wrote"):
        memory.feedback("c1", used=[fact])
    # An empty raw directory is refused too when the build says the brain was built from it.
    empty = tmp_path / "empty_raw"
    empty.mkdir()
    (models / "build_state.json").write_text(json.dumps({"settings": {"raw": str(empty)}, "stages": {}}))
    tool = ToolTRM.from_checkpoint(models / "tool", device="cpu", feedback_dir=empty)
    with pytest.raises(FeedbackError, match=f"^feedback directory {empty} is the raw directory {empty}"):
        tool.record_outcome("play some jazz", "media.play_music", "success")
    assert snapshot(raw) == before and list(empty.iterdir()) == []


# --- ToolTRM.record_outcome ----------------------------------------------------------------------------------
def test_tool_outcomes_are_raw_log_lines(models):
    tool = ToolTRM.from_checkpoint(models / "tool", device="cpu")
    first = tool.record_outcome("what's the weather in Porto", "web.search", "error", error="HTTP 503",
                                conversation_id="c1", available_tools=TOOLS)
    tool.record_outcome("what's the weather in Porto", "weather.get_forecast", "success", conversation_id="c1",
                        available_tools=[{"name": "weather.get_forecast", "description": "forecast for a city"}])
    tool.record_outcome("play some jazz", "media.play_music", "success")
    assert (first["task"], first["tool"], first["status"], first["error"], first["available_tools"]) == (
        "what's the weather in Porto", "web.search", "error", "HTTP 503", TOOLS)
    lines = (models / "feedback" / "training_data_fast.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines][0] == first
    store = load(models / "feedback")
    assert store.report.problems == []
    calls = [(c.conversation_id, c.task, c.tool, c.status, c.error, [s.name for s in c.available_tools])
             for c in store.tool_calls]
    assert calls == [("c1", "what's the weather in Porto", "web.search", "error", "HTTP 503", TOOLS),
                     ("c1", "what's the weather in Porto", "weather.get_forecast", "success", None,
                      ["weather.get_forecast"]),
                     (None, "play some jazz", "media.play_music", "success", None, [])]
    assert store.tool_calls[1].available_tools[0].description == "forecast for a city"


@pytest.mark.parametrize("args, error, message", [
    (("", "web.search", "success"), ValueError, "task is empty"),
    (("task", " ", "success"), ValueError, "tool is empty"),
    (("task", "web.search", "ok"), ValueError, "status must be 'success' or 'error', got 'ok'"),
    (("task", "web.search", "success", "boom"), ValueError, "error is given but status is 'success'"),
    (("task", "web.search", "success", None, None, ["media.play_music"]), ValueError,
     "tool 'web.search' is not among available_tools"),
    (("task", "web.search", "success", None, None, "web.search"), TypeError, "available_tools must be a list"),
    (("task", "web.search", "success", None, 7), TypeError, "conversation_id must be a non-empty string, got 7"),
])
def test_tool_outcome_rejects_bad_arguments_and_writes_nothing(models, args, error, message):
    tool = ToolTRM.from_checkpoint(models / "tool", device="cpu")
    with pytest.raises(error) as raised:
        tool.record_outcome(*args)
    assert str(raised.value).startswith(message), str(raised.value)
    assert not (models / "feedback").exists()


# --- ReasoningTRM.record_outcome -----------------------------------------------------------------------------
def test_plan_outcomes_successes_become_patterns_and_failures_do_not(models):
    reasoning = ReasoningTRM.from_checkpoint(models / "reasoning", device="cpu")
    steps = ["pick a destination", "search hotels", "book hotel"]
    ok = reasoning.record_outcome("Book a weekend getaway", steps, True)
    again = reasoning.record_outcome("book a weekend getaway!", [s.upper() for s in steps], True)
    reasoning.record_outcome("Repaint the kitchen", ["buy paint", "paint"], False)
    assert ok["pattern_id"] == again["pattern_id"] and ok["steps"] == steps and ok["success"] is True
    store = load(models / "feedback")
    assert [(p.goal, p.steps, p.success_count) for p in store.patterns] == [("Book a weekend getaway", tuple(steps),
                                                                             2)]
    assert {e.goal for e in mine_reasoning(store)} == {"Book a weekend getaway"}
    with FeedbackLog(models / "feedback") as log:
        assert [o["success"] for o in log.plan_outcomes()] == [True, True, False]


@pytest.mark.parametrize("args, error, message", [
    (("", ["a"], True), ValueError, "goal is empty"),
    (("goal", [], True), ValueError, "steps is empty: give the plan's steps in order"),
    (("goal", "a step", True), TypeError, "steps must be a list of strings, got str"),
    (("goal", ["a", " "], True), ValueError, "steps[1] is empty"),
    (("goal", ["a"], "yes"), TypeError, "success must be True or False, got 'yes'"),
])
def test_plan_outcome_rejects_bad_arguments_and_writes_nothing(models, args, error, message):
    reasoning = ReasoningTRM.from_checkpoint(models / "reasoning", device="cpu")
    with pytest.raises(error) as raised:
        reasoning.record_outcome(*args)
    assert str(raised.value).startswith(message), str(raised.value)
    assert not (models / "feedback").exists()


# --- UnifiedConsciousness.feedback ---------------------------------------------------------------------------
def test_brain_feedback_records_each_part_of_the_last_turn(tiny_brain, models):
    # fast_path_threshold 1.0: the turn plans too, so all three parts have something to refer to.
    brain = UnifiedConsciousness.from_dir(models, device="cpu", fast_path_threshold=1.0)
    goal = a_plan_goal(tiny_brain)
    turn = brain.process(goal, conversation_id="c1", available_tools=TOOLS)
    assert turn["plan"]["plan_steps"]
    fact = sorted(brain.memory.featurizer.position)[0]  # the user may name any stored fact, shown or not
    recorded = brain.feedback("c1", used=[fact], tool_status="error", tool_error="TimeoutError", plan_success=True)
    assert recorded["memory"] == {"conversation_id": "c1", "query": goal, "used": [fact], "rejected": []}
    assert (recorded["tool"]["task"], recorded["tool"]["tool"], recorded["tool"]["status"],
            recorded["tool"]["error"], recorded["tool"]["available_tools"]) == (
        goal, turn["tool"]["selected_tool"], "error", "TimeoutError", TOOLS)
    assert (recorded["plan"]["goal"], recorded["plan"]["steps"]) == (goal, turn["plan"]["plan_steps"])
    # The app ran another tool, successfully, and carried out other steps.
    brain.feedback("c1", tool_status="success", tool="calendar.add_event", plan_success=True,
                   plan_steps=["open the calendar", "add the event"])
    store = load(models / "feedback")
    assert store.report.problems == []
    assert [(m.content, m.memory_refs) for m in store.conversations[0].messages] == [(goal, (fact,))]
    assert [(c.task, c.tool, c.status, c.conversation_id) for c in store.tool_calls] == [
        (goal, turn["tool"]["selected_tool"], "error", "c1"), (goal, "calendar.add_event", "success", "c1")]
    assert "calendar.add_event" in [s.name for s in store.tool_calls[1].available_tools]
    assert sorted(p.steps for p in store.patterns) == sorted([tuple(turn["plan"]["plan_steps"]),
                                                              ("open the calendar", "add the event")])


def test_brain_feedback_on_memories_alone_follows_the_last_retrieve(models):
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    fact = brain.memory.retrieve(QUESTION, conversation_id="r1")["memories"][0]["id"]  # no turn, a retrieve
    assert brain.feedback("r1", rejected=[fact])["memory"]["query"] == QUESTION
    with pytest.raises(ValueError, match="^conversation 'r1' has no turn to give tool feedback on"):
        brain.feedback("r1", tool_status="success")


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "nothing to record: give used/rejected"),
    (dict(tool_error="boom"), "tool_error and tool describe a tool call: give tool_status with them"),
    (dict(plan_steps=["a"]), "plan_steps describes a plan's outcome: give plan_success with it"),
    (dict(used=["nope"]), "unknown memory id(s) 'nope'"),
    (dict(used=[], tool_status="done"), "status must be 'success' or 'error', got 'done'"),
    (dict(used=[], plan_success="yes"), "success must be True or False, got 'yes'"),
    (dict(tool_status="success", tool="not.offered", plan_success=True, plan_steps=[""]), "steps[0] is empty"),
], ids=["nothing", "error-alone", "steps-alone", "unknown-id", "status", "success", "empty-step"])
def test_brain_feedback_checks_every_part_before_writing_any(models, kwargs, message):
    brain = UnifiedConsciousness.from_dir(models, device="cpu", fast_path_threshold=1.0)
    brain.process(QUESTION, conversation_id="c1", available_tools=TOOLS)
    with pytest.raises((ValueError, TypeError)) as raised:
        brain.feedback("c1", **kwargs)
    assert str(raised.value).startswith(message), str(raised.value)
    assert not (models / "feedback").exists()


def test_brain_feedback_needs_a_turn_and_the_trm_of_each_part(models):
    shutil.rmtree(models / "reasoning")
    brain = UnifiedConsciousness.from_dir(models, device="cpu")
    with pytest.raises(ValueError, match="^conversation 'c1' has no turn to give tool feedback on"):
        brain.feedback("c1", tool_status="success")
    brain.process(QUESTION, conversation_id="c1")
    with pytest.raises(ValueError, match="^no reasoning TRM is loaded \\(not found: .*\\): its feedback cannot be "
                                         "recorded$"):
        brain.feedback("c1", plan_success=True)
    brain.reset_conversation("c1")  # forgets the turn (and the memory carry's last retrieve)
    assert brain.last_turn("c1") is None
    with pytest.raises(ValueError, match="^conversation 'c1' has no retrieve to give feedback on"):
        brain.feedback("c1", used=[])
    assert not (models / "feedback").exists()
    assert brain.capabilities()["tool"]["operations"][-1] == "record_outcome"
