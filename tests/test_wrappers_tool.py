"""Tests for dexter_brain.wrappers.tool (``ToolTRM``).

Uses the session's tiny trained brain (``tiny_brain`` in tests/conftest.py); every test loads its own wrapper.
Checked: the result's keys, that only available tools are ever returned (a property over many tasks and
random tool lists), tools never seen in training ranked by name and description, ``previous_error`` steering
away from the tool that failed (named, or remembered by the carry), batching, and bad input.

Run: python -m pytest tests/test_wrappers_tool.py -q
"""

from __future__ import annotations

import random

import pytest

from dexter_brain import ToolTRM
from dexter_brain.wrappers.tool import MAX_TOOLS

TASKS = ["Check system status", "what's the weather in Paris tomorrow", "send an email to Jo", "play some music",
         "convert 100 usd to eur", "set a timer for 10 minutes", "find my notes about taxes", "search flights to Rome",
         "how much space is left on the disk", "remind me to call mum at 6", "translate 'good morning' to Spanish",
         "what's on my calendar on friday"]
ERROR = "Error: the request failed (status 500)"


@pytest.fixture
def tool(tiny_brain) -> ToolTRM:
    return ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")


def probability(result: dict, name: str) -> float:
    return dict(result["ranking"])[name]


def test_select_tool_returns_documented_keys(tool):
    tools = ["system_ops.get_info", "file_system.list", "weather.get_forecast"]
    r = tool.select_tool("Check system status", available_tools=tools, conversation_id="c1")
    assert set(r) == {"selected_tool", "confidence", "abstain", "ranking", "predicted_error", "error_probability",
                      "steps"}
    assert r["selected_tool"] in tools
    assert [name for name, _ in r["ranking"]][0] == r["selected_tool"]
    assert sorted(name for name, _ in r["ranking"]) == sorted(tools)
    probs = [p for _, p in r["ranking"]]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert r["confidence"] == probs[0] and 0.0 <= r["confidence"] <= 1.0
    assert isinstance(r["abstain"], bool) and isinstance(r["predicted_error"], bool)
    assert 0.0 <= r["error_probability"] <= 1.0
    # Recursion steps used: none when the floor scores alone (the residual did not beat it in training).
    assert isinstance(r["steps"], int)
    assert 1 <= r["steps"] <= tool.core.max_steps if tool.core.model.use_residual else r["steps"] == 0


def test_no_tool_list_means_the_whole_catalogue(tool):
    r = tool.select_tool("Check system status")
    assert sorted(name for name, _ in r["ranking"]) == tool.catalogue


def test_a_tool_outside_the_list_is_never_returned(tool):
    rng = random.Random(0)
    catalogue = tool.catalogue
    for i in range(60):
        tools = rng.sample(catalogue, rng.randint(1, 6))
        if i % 3 == 0:
            tools.append({"name": f"plugin_{i}.run", "description": "Run a third-party plugin action"})
        names = [t if isinstance(t, str) else t["name"] for t in tools]
        r = tool.select_tool(rng.choice(TASKS), available_tools=tools, conversation_id=f"c{i % 4}",
                             previous_error=ERROR if i % 5 == 0 else None)
        assert r["selected_tool"] in names
        assert sorted(name for name, _ in r["ranking"]) == sorted(names)


def test_duplicate_tools_are_ranked_once(tool):
    r = tool.select_tool("play some music", available_tools=["media.play_music", "media.play_music", "web.search"])
    assert [name for name, _ in r["ranking"]].count("media.play_music") == 1 and len(r["ranking"]) == 2


def test_an_unknown_tool_with_a_description_is_ranked(tool):
    unknown = {"name": "pizza.order", "description": "Order a pizza for delivery to your home"}
    r = tool.select_tool("order a margherita pizza for tonight", available_tools=[unknown, "web.search",
                                                                                  "calculator.evaluate"])
    assert "pizza.order" in dict(r["ranking"]) and probability(r, "pizza.order") > 0.0
    only_unknown = tool.select_tool("order a pizza", available_tools=[unknown, {"name": "taxi.book"}])
    assert only_unknown["selected_tool"] in {"pizza.order", "taxi.book"}


def test_previous_error_steers_away_from_the_failed_tool_through_carry(tool):
    """Select, then in the same conversation report an error that does not name the tool: the carry remembers
    which tool was selected, and that tool's probability drops against a conversation that reports no error."""
    for task in TASKS:
        first = tool.select_tool(task, conversation_id="err")
        assert tool.select_tool(task, conversation_id="ok") == first
        failed = first["selected_tool"]
        after_error = tool.select_tool(task, previous_error=ERROR, conversation_id="err")
        after_success = tool.select_tool(task, conversation_id="ok")
        assert probability(after_error, failed) < probability(after_success, failed), task
        assert [n for n, _ in after_error["ranking"]].index(failed) >= [n for n, _ in after_success["ranking"]].index(
            failed), task
        tool.reset_carry()


def test_select_tool_many_equals_single_calls(tool, tiny_brain):
    tools = [["web.search", "weather.get_forecast", "notes.search"], None, ["media.play_music", "web.search"],
             [{"name": "pizza.order", "description": "Order a pizza"}, "web.search"], ["web.search", "email.send"]]
    tasks = TASKS[:5]
    errors = [None, None, ERROR, None, ERROR]
    conversations = ["a", "b", "a", "c", "a"]  # conversation "a" three times in one batch: order is kept
    batched = tool.select_tool_many(tasks, tools, None, errors, conversation_ids=conversations)
    single = ToolTRM.from_checkpoint(tiny_brain["models"] / "tool", device="cpu")
    expected = [single.select_tool(t, a, None, e, conversation_id=c)
                for t, a, e, c in zip(tasks, tools, errors, conversations)]
    for got, want in zip(batched, expected):
        assert got["selected_tool"] == want["selected_tool"]
        assert [n for n, _ in got["ranking"]] == [n for n, _ in want["ranking"]]
        assert [p for _, p in got["ranking"]] == pytest.approx([p for _, p in want["ranking"]], abs=1e-5)
        assert got["steps"] == want["steps"]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"task": ""}, ValueError, "task is empty"),
    ({"task": "   "}, ValueError, "task is empty"),
    ({"task": "y" * 12_000}, ValueError, "task is too long: 12000 characters (at most 8000)"),
    ({"task": 3.5}, TypeError, "task must be a string, got float"),
    ({"available_tools": []}, ValueError,
     "available_tools is empty: give at least one tool, or None for the whole catalogue"),
    ({"available_tools": "web.search"}, TypeError,
     "available_tools must be a list of names or {name, description} objects, got str"),
    ({"available_tools": ["web.search", 42]}, TypeError,
     "available_tools[1] must be a name or a {name, description} object, got 42"),
    ({"available_tools": [{"description": "no name"}]}, TypeError,
     "available_tools[0] must be a name or a {name, description} object, got {'description': 'no name'}"),
    ({"available_tools": [{"name": "x.y", "description": 3}]}, TypeError,
     "available_tools[0].description must be a string"),
    ({"available_tools": ["  "]}, ValueError, "available_tools[0] has an empty name"),
    ({"available_tools": [f"t{i}.run" for i in range(MAX_TOOLS + 1)]}, ValueError,
     f"available_tools has {MAX_TOOLS + 1} tools (at most {MAX_TOOLS})"),
    ({"previous_error": 500}, TypeError, "previous_error must be a string, got int"),
    ({"context": 12}, TypeError, "context must be a string, got int"),
    ({"conversation_id": None}, TypeError, "conversation_id must be a non-empty string, got None"),
])
def test_select_tool_rejects_bad_input(tool, kwargs, error, message):
    kwargs = {"task": "Check system status", **kwargs}
    with pytest.raises(error) as info:
        tool.select_tool(**kwargs)
    assert str(info.value) == message


def test_context_may_be_a_dict_or_text(tool):
    r1 = tool.select_tool("Check system status", available_tools=["system_ops.get_info", "web.search"],
                          context={"app": "settings", "screen": "about"})
    r2 = tool.select_tool("Check system status", available_tools=["system_ops.get_info", "web.search"],
                          context="settings about screen")
    assert r1["selected_tool"] in {"system_ops.get_info", "web.search"}
    assert r2["selected_tool"] in {"system_ops.get_info", "web.search"}
