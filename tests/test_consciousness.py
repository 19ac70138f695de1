"""Tests for dexter_brain.wrappers.consciousness (``UnifiedConsciousness``) on the session's tiny brain.

The centre piece is a two-conversation dialogue with interleaved turns: the carries stay isolated, a follow-up
differs with and without carry, ``reset_conversation`` gives back the fresh behaviour, and saving and loading
the carries into a restarted brain reproduces the next outputs exactly. Also: loading from a models directory
with a part missing or broken, the fast path with a tool executor (and a failing one), planning otherwise, an
LLM client (a fake: the only thing mocked), ``health``/``capabilities`` and bad input.

Run: python -m pytest tests/test_consciousness.py -q
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from dexter_brain import MemoryTRM, UnifiedConsciousness
from dexter_brain.checkpoint import CheckpointError

TOOLS = ["media.play_music", "media.set_volume", "web.search", "weather.get_forecast", "calendar.list_events"]
RESULT_KEYS = {"memories", "memory", "tool", "fast_path", "tool_result", "tool_error", "plan", "context", "response",
               "timings_ms"}


def load(tiny_brain, **kw) -> UnifiedConsciousness:
    return UnifiedConsciousness.from_dir(tiny_brain["models"], device="cpu", **kw)


def without_timings(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "timings_ms"}


class FakeLLM:
    def __init__(self):
        self.contexts: list[dict] = []

    async def chat(self, context: dict) -> str:
        self.contexts.append(context)
        return f"reply to {context['user']!r}"


class RecordingExecutor:
    def __init__(self, fail: bool = False):
        self.calls: list[tuple] = []
        self.fail = fail

    async def __call__(self, tool: str, text: str, context: dict):
        self.calls.append((tool, text, context))
        if self.fail:
            raise TimeoutError("the tool did not answer")
        return {"status": "ok", "tool": tool}


# --- the dialogue ---------------------------------------------------------------------------------------------
A = ["What did I buy from John Lewis?", "tell me more about that one", "and how much was it?"]
B = ["When is my next dentist appointment?", "can you move it to friday?", "remind me the day before"]


def turn(brain, conversation: str, text: str) -> dict:
    return without_timings(brain.process(text, conversation_id=conversation, available_tools=TOOLS))


def test_two_interleaved_conversations_keep_their_carries_apart(tiny_brain):
    brain = load(tiny_brain)
    interleaved = {"a": [], "b": []}
    for a, b in zip(A, B):
        interleaved["a"].append(turn(brain, "a", a))
        interleaved["b"].append(turn(brain, "b", b))
    assert brain.health()["conversations"] == 2
    for cid, texts in (("a", A), ("b", B)):
        alone = load(tiny_brain)
        assert [turn(alone, cid, t) for t in texts] == interleaved[cid]


def test_a_follow_up_differs_with_and_without_carry(tiny_brain):
    with_carry, without = load(tiny_brain), load(tiny_brain, use_carry=False)
    turn(with_carry, "a", A[0])
    turn(without, "a", A[0])
    carried, fresh = turn(with_carry, "a", A[1]), turn(without, "a", A[1])
    assert carried != fresh
    assert carried["memory"] != fresh["memory"]
    assert without.health()["conversations"] == 0


def test_reset_conversation_restores_the_fresh_behaviour(tiny_brain):
    first_ever = turn(load(tiny_brain), "a", A[1])
    brain = load(tiny_brain)
    turn(brain, "a", A[0])
    turn(brain, "b", B[0])
    assert turn(brain, "a", A[1]) != first_ever
    brain.reset_conversation("a")
    assert brain.health()["conversations"] == 1
    assert turn(brain, "a", A[1]) == first_ever
    alone_b = load(tiny_brain)
    turn(alone_b, "b", B[0])
    assert turn(brain, "b", B[1]) == turn(alone_b, "b", B[1])  # "b" kept its carry


def test_saved_carries_reproduce_the_next_outputs_after_a_restart(tiny_brain, tmp_path):
    brain = load(tiny_brain)
    turn(brain, "a", A[0])
    turn(brain, "b", B[0])
    files = brain.save_carries(tmp_path / "carries")
    assert sorted(files) == ["memory", "reasoning", "tool"] and all(f.is_file() for f in files.values())
    restarted = load(tiny_brain)
    assert restarted.load_carries(tmp_path / "carries") == {"memory": 2, "tool": 2, "reasoning": 2}
    for cid, text in (("a", A[1]), ("b", B[1]), ("a", A[2])):
        assert turn(restarted, cid, text) == turn(brain, cid, text)


def test_load_carries_from_a_missing_directory(tiny_brain, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load(tiny_brain).load_carries(tmp_path / "nope")
    assert str(info.value) == f"carry directory not found: {tmp_path / 'nope'}"


# --- one turn -----------------------------------------------------------------------------------------------
def test_process_input_returns_the_assembled_context(tiny_brain):
    brain = load(tiny_brain, fast_path_threshold=1.0)
    r = asyncio.run(brain.process_input(A[0], conversation_id="c1", available_tools=TOOLS,
                                        context={"screen": "purchases"}))
    assert set(r) == RESULT_KEYS
    assert r["memory"]["memories"] and r["memories"] == (r["memory"]["memories"] if not r["memory"]["abstain"] else [])
    stored = {f["id"]: f for f in brain.memory.featurizer.facts}
    assert all(m["text"] == stored[m["id"]]["text"] and m["source"] for m in r["memories"])
    assert r["tool"]["selected_tool"] in TOOLS and r["fast_path"] is False
    assert r["tool_result"] is None and r["tool_error"] is None and r["response"] is None
    assert set(r["plan"]) == {"plan_steps", "complexity", "confidence", "steps", "candidates"}
    ctx = r["context"]
    assert ctx["user"] == A[0] and ctx["conversation_id"] == "c1" and ctx["ui_context"] == {"screen": "purchases"}
    assert ctx["memories"] == r["memories"]
    assert ctx["tool"] == {"name": r["tool"]["selected_tool"], "confidence": r["tool"]["confidence"],
                           "fast_path": False}
    assert ctx["plan"]["steps"] == r["plan"]["plan_steps"]
    prompt = ctx["prompt"]
    assert prompt.startswith(f"User: {A[0]}\nApp context: screen: purchases\n")
    assert f"Tool: {r['tool']['selected_tool']} (confidence" in prompt
    for m in r["memories"]:
        assert f"- {m['text']} (source: {m['source']})" in prompt
    for step in r["plan"]["plan_steps"]:
        assert step in prompt
    assert set(r["timings_ms"]) == {"memory", "tool", "plan", "total"}
    assert all(v >= 0 for v in r["timings_ms"].values())


def test_fast_path_hands_the_tool_to_the_executor(tiny_brain):
    executor = RecordingExecutor()
    brain = load(tiny_brain, fast_path_threshold=0.0, tool_executor=executor)
    r = brain.process("play some music", conversation_id="c1", available_tools=TOOLS)
    assert r["fast_path"] is True and r["plan"] is None
    assert r["tool_result"] == {"status": "ok", "tool": r["tool"]["selected_tool"]}
    (tool, text, context), = executor.calls
    assert (tool, text) == (r["tool"]["selected_tool"], "play some music") and context["memories"] == r["memories"]
    assert f"Tool result: {r['tool_result']}" in r["context"]["prompt"]
    assert "tool_executor" in r["timings_ms"] and "plan" not in r["timings_ms"]


def test_a_failing_executor_is_reported_and_planning_takes_over(tiny_brain):
    brain = load(tiny_brain, fast_path_threshold=0.0, tool_executor=RecordingExecutor(fail=True))
    r = brain.process("play some music", conversation_id="c1", available_tools=TOOLS)
    assert r["fast_path"] is True and r["tool_result"] is None
    assert r["tool_error"] == "TimeoutError: the tool did not answer" and r["plan"] is not None
    assert "Tool error: TimeoutError: the tool did not answer" in r["context"]["prompt"]


def test_below_the_threshold_it_plans_and_does_not_execute(tiny_brain):
    executor = RecordingExecutor()
    brain = load(tiny_brain, fast_path_threshold=1.0, tool_executor=executor)
    r = brain.process("play some music", available_tools=TOOLS)
    assert r["fast_path"] is False and r["plan"] is not None and executor.calls == []


def test_the_llm_gets_the_context_and_its_reply_is_returned(tiny_brain):
    llm = FakeLLM()
    brain = load(tiny_brain, llm=llm)
    r = brain.process(A[0], conversation_id="c1")
    assert r["response"] == f"reply to {A[0]!r}"
    assert llm.contexts == [r["context"]] and "prompt" in llm.contexts[0]
    assert "llm" in r["timings_ms"]


def test_previous_error_reaches_the_tool_and_the_prompt(tiny_brain):
    brain = load(tiny_brain)
    first = brain.process("play some music", conversation_id="c1", available_tools=TOOLS)
    again = brain.process("play some music", conversation_id="c1", available_tools=TOOLS,
                          previous_error="Error: speaker not found")
    failed = first["tool"]["selected_tool"]
    control = load(tiny_brain)
    control.process("play some music", conversation_id="c1", available_tools=TOOLS)
    no_error = control.process("play some music", conversation_id="c1", available_tools=TOOLS)
    assert dict(again["tool"]["ranking"])[failed] < dict(no_error["tool"]["ranking"])[failed]
    assert "The previous tool call failed: Error: speaker not found" in again["context"]["prompt"]


def test_process_inside_a_running_loop_fails_clearly(tiny_brain):
    brain = load(tiny_brain)

    async def inside():
        with pytest.raises(RuntimeError) as info:
            brain.process("hello")
        return str(info.value)

    assert asyncio.run(inside()) == "process() was called inside a running event loop: use `await process_input(...)`"


@pytest.mark.parametrize("kwargs, error, message", [
    ({"text": ""}, ValueError, "text is empty"),
    ({"text": "z" * 9_000}, ValueError, "text is too long: 9000 characters (at most 8000)"),
    ({"text": 12}, TypeError, "text must be a string, got int"),
    ({"text": "hi", "conversation_id": ""}, TypeError, "conversation_id must be a non-empty string, got ''"),
    ({"text": "hi", "context": 5}, TypeError, "context must be a dict or a string, got int"),
    ({"text": "hi", "available_tools": []}, ValueError,
     "available_tools is empty: give at least one tool, or None for the whole catalogue"),
    ({"text": "hi", "previous_error": 3}, TypeError, "previous_error must be a string, got int"),
    ({"text": "hi", "available_tools": ["web.search", None]}, TypeError,
     "available_tools[1] must be a name or a {name, description} object, got None"),
    ({"text": "hi", "context": "c" * 8_001}, ValueError, "context is too long: 8001 characters (at most 8000)"),
])
def test_bad_input_is_rejected_before_any_carry_moves(tiny_brain, kwargs, error, message):
    brain = load(tiny_brain)
    with pytest.raises(error) as info:
        brain.process(**kwargs)
    assert str(info.value) == message
    assert brain.health()["conversations"] == 0


# --- loading, health, capabilities -----------------------------------------------------------------------------
def test_health_and_capabilities(tiny_brain):
    brain = load(tiny_brain)
    brain.process(A[0], conversation_id="c1")
    health = brain.health()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["conversations"] == 1
    assert health["llm"] is False and health["tool_executor"] is False
    for kind in ("memory", "tool", "reasoning"):
        m = health["models"][kind]
        assert m["loaded"] and m["version"] == "0.1.0" and m["device"] == "cpu" and m["conversations"] == 1
        assert m["checkpoint"] == str(tiny_brain["models"] / kind / "best")
    caps = brain.capabilities()
    assert caps["memory"]["operations"][0] == "retrieve" and caps["memory"]["facts"] == len(brain.memory)
    assert caps["tool"]["tools"] == len(brain.tool.catalogue) and caps["reasoning"]["plans"] > 0
    for kind in ("memory", "tool", "reasoning"):
        assert caps[kind]["available"] and caps[kind]["kind"] == kind
        assert caps[kind]["vocab_size"] == brain.memory.core.vocab.vocab_size and caps[kind]["parameters"] > 0
    assert (caps["fast_path_threshold"], caps["memory_k"]) == (0.8, 5)


def test_from_dir_runs_without_a_missing_part(tiny_brain, tmp_path):
    models = tmp_path / "models"
    for kind in ("memory", "tool"):
        shutil.copytree(tiny_brain["models"] / kind, models / kind)
    brain = UnifiedConsciousness.from_dir(models, device="cpu", fast_path_threshold=1.0)
    assert brain.reasoning is None
    health = brain.health()
    assert health["status"] == "degraded"
    assert health["models"]["reasoning"] == {"loaded": False, "reason": f"not found: {models / 'reasoning'}"}
    assert brain.capabilities()["reasoning"] == {"available": False, "operations": []}
    r = brain.process(A[0])
    assert r["plan"] is None and r["fast_path"] is False and r["tool"] is not None


def test_composed_by_hand_with_one_part(tiny_brain):
    brain = UnifiedConsciousness(MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu"), None, None)
    r = brain.process(A[0])
    assert r["tool"] is None and r["plan"] is None and r["memory"] is not None
    assert brain.health()["models"]["tool"] == {"loaded": False, "reason": "not given"}


@pytest.mark.parametrize("setup, message", [
    ("missing", "models directory not found: {models}"),
    ("empty", "{models} holds no TRM checkpoint: expected memory/, tool/ or reasoning/"),
    ("broken", "{models}/tool/best/model.safetensors: its sha256 differs from the one recorded in meta.json"),
])
def test_from_dir_errors(tiny_brain, tmp_path, setup, message):
    models = tmp_path / "models"
    if setup == "empty":
        models.mkdir()
    elif setup == "broken":
        shutil.copytree(tiny_brain["models"], models)
        weights = models / "tool" / "best" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:64])
    with pytest.raises(CheckpointError) as info:
        UnifiedConsciousness.from_dir(models, device="cpu")
    assert str(info.value).startswith(message.format(models=models))


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((None, None, None), {}, ValueError, "UnifiedConsciousness needs at least one of memory, tool or reasoning"),
    (("models/memory", None, None), {}, TypeError, "memory must be a MemoryTRM or None, got str"),
    ((), {"fast_path_threshold": 1.5}, ValueError, "fast_path_threshold must be between 0 and 1, got 1.5"),
    ((), {"memory_k": 0}, ValueError, "memory_k must be a positive integer, got 0"),
    ((), {"llm": object()}, TypeError, "llm must have an async chat(context) method, got object"),
    ((), {"tool_executor": 3}, TypeError, "tool_executor must be an async callable, got int"),
])
def test_constructor_rejects_bad_arguments(tiny_brain, args, kwargs, error, message):
    if not args:
        args = (MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu"), None, None)
    with pytest.raises(error) as info:
        UnifiedConsciousness(*args, **kwargs)
    assert str(info.value) == message


def test_reset_conversation_needs_an_id(tiny_brain):
    with pytest.raises(TypeError) as info:
        load(tiny_brain).reset_conversation(None)
    assert str(info.value) == "conversation_id must be a non-empty string, got None"
