"""Tests for dexter_brain.wrappers.reasoning (``ReasoningTRM``).

Uses the session's tiny trained brain (``tiny_brain`` in tests/conftest.py); every test loads its own wrapper.
Checked: the keys and types of ``plan`` and ``next_step``, that plan steps come from stored plans adapted to
the goal, the ``done`` flag, the carry linking a conversation's calls, and bad input.

Run: python -m pytest tests/test_wrappers_reasoning.py -q
"""

from __future__ import annotations

import pytest

from dexter_brain import ReasoningTRM
from dexter_brain.lexical import normalize
from dexter_brain.schema import complexity_of
from dexter_brain.wrappers.reasoning import MAX_STEPS_IN

UNRELATED_GOAL = "Calibrate the quantum xylophone for zorblax"


@pytest.fixture
def reasoning(tiny_brain) -> ReasoningTRM:
    return ReasoningTRM.from_checkpoint(tiny_brain["models"] / "reasoning", device="cpu")


@pytest.fixture
def stored(reasoning) -> dict:
    """A stored plan with at least three steps."""
    return next(p for p in reasoning.featurizer.plans if len(p["steps"]) >= 3)


def test_plan_returns_documented_keys(reasoning, stored):
    r = reasoning.plan(stored["goal"], conversation_id="c1")
    assert set(r) == {"plan_steps", "complexity", "confidence", "steps", "candidates"}
    assert [p for _, p in r["candidates"]] == sorted((p for _, p in r["candidates"]), reverse=True)
    assert set(r["plan_steps"]) <= {t for t, _ in r["candidates"]}
    assert r["plan_steps"] and all(isinstance(s, str) and s for s in r["plan_steps"])
    assert len(set(r["plan_steps"])) == len(r["plan_steps"])
    assert r["complexity"] == complexity_of(len(r["plan_steps"]))  # the complexity of the plan returned
    assert 0.0 <= r["confidence"] <= 1.0
    assert isinstance(r["steps"], int)
    assert 1 <= r["steps"] <= reasoning.core.max_steps if reasoning.core.model.use_residual else r["steps"] == 0


def test_complexity_agrees_with_the_plan_returned(reasoning):
    # README: simple 1-3 steps, moderate 4-6, complex 7 or more.
    seen = set()
    for plan in reasoning.featurizer.plans:
        r = reasoning.plan(plan["goal"], conversation_id="complexity")
        n = len(r["plan_steps"])
        assert r["complexity"] == ("simple" if n <= 3 else "moderate" if n <= 6 else "complex"), (n, r["complexity"])
        seen.add(r["complexity"])
    assert len(seen) >= 2  # the tiny brain's plans are of several lengths: the rule was really exercised


def test_plan_steps_come_from_stored_plans(reasoning, stored):
    candidates = set(reasoning.inputs.row(stored["goal"], next_mode=False).texts)
    r = reasoning.plan(stored["goal"], state="nothing done yet", constraints=["spend under 100 pounds"])
    assert set(r["plan_steps"]) <= candidates


def test_plan_for_a_goal_like_no_stored_plan_is_empty(reasoning):
    r = reasoning.plan(UNRELATED_GOAL)
    assert r == {"plan_steps": [], "complexity": "simple", "confidence": 0.0, "steps": r["steps"], "candidates": []}


def test_next_step_returns_documented_keys(reasoning, stored):
    r = reasoning.next_step(stored["goal"], completed=stored["steps"][:1], conversation_id="c1")
    assert set(r) == {"next_step", "done", "confidence", "steps", "ranking"}
    assert r["ranking"][0] == (r["next_step"], r["confidence"])
    assert isinstance(r["done"], bool) and (r["next_step"] is None) == r["done"]
    if not r["done"]:
        assert r["next_step"] in reasoning.inputs.row(stored["goal"], stored["steps"][:1], next_mode=True).texts
    assert 0.0 <= r["confidence"] <= 1.0
    assert isinstance(r["steps"], int)
    assert 1 <= r["steps"] <= reasoning.core.max_steps if reasoning.core.model.use_residual else r["steps"] == 0


def test_next_step_is_done_when_no_stored_plan_applies(reasoning):
    r = reasoning.next_step(UNRELATED_GOAL, completed=["think about it"])
    assert r == {"next_step": None, "done": True, "confidence": 1.0, "steps": r["steps"], "ranking": [(None, 1.0)]}


def test_next_step_never_repeats_a_completed_step(reasoning):
    for plan in reasoning.featurizer.plans:
        for n in range(1, len(plan["steps"])):
            completed = plan["steps"][:n]
            r = reasoning.next_step(plan["goal"], completed=completed, conversation_id=plan["id"])
            assert r["done"] or normalize(r["next_step"]) not in {normalize(s) for s in completed}, (plan, r)


def test_plan_then_next_step_share_the_conversation_carry(tiny_brain, stored):
    # ``last/`` scores with the trained residual, which reads the latent carry (``best/`` may be the floor alone).
    last = tiny_brain["models"] / "reasoning" / "last"
    reasoning = ReasoningTRM.from_checkpoint(last, device="cpu")
    reasoning.plan(stored["goal"], conversation_id="c1")
    follow = reasoning.next_step(stored["goal"], completed=stored["steps"][:1], conversation_id="c1")
    fresh = ReasoningTRM.from_checkpoint(last, device="cpu").next_step(
        stored["goal"], completed=stored["steps"][:1], conversation_id="c1")
    assert reasoning.core.carries.get("c1").turns == 2
    assert follow != fresh


@pytest.mark.parametrize("call, error, message", [
    (lambda r: r.plan(""), ValueError, "goal is empty"),
    (lambda r: r.plan(" \n "), ValueError, "goal is empty"),
    (lambda r: r.plan("g" * 10_000), ValueError, "goal is too long: 10000 characters (at most 8000)"),
    (lambda r: r.plan(7), TypeError, "goal must be a string, got int"),
    (lambda r: r.plan("tax the car", state=3), TypeError, "state must be a string, got int"),
    (lambda r: r.plan("tax the car", constraints="cheap"), TypeError, "constraints must be a list of strings, got str"),
    (lambda r: r.plan("tax the car", constraints=["ok", ""]), ValueError, "constraints[1] is empty"),
    (lambda r: r.plan("tax the car", constraints=["c"] * (MAX_STEPS_IN + 1)), ValueError,
     f"constraints has {MAX_STEPS_IN + 1} items (at most {MAX_STEPS_IN})"),
    (lambda r: r.plan("tax the car", conversation_id=""), TypeError,
     "conversation_id must be a non-empty string, got ''"),
    (lambda r: r.next_step(None), TypeError, "goal must be a string, got NoneType"),
    (lambda r: r.next_step("tax the car", completed="renew"), TypeError,
     "completed must be a list of strings, got str"),
    (lambda r: r.next_step("tax the car", completed=[3]), TypeError, "completed[0] must be a string, got int"),
    (lambda r: r.next_step("tax the car", completed={"a": 1}), TypeError,
     "completed must be a list of strings, got dict"),
])
def test_bad_input_is_rejected(reasoning, call, error, message):
    with pytest.raises(error) as info:
        call(reasoning)
    assert str(info.value) == message
