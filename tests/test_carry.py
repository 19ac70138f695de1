"""Tests for dexter_brain.wrappers.carry (``CarryStore``) and for the carry behaviour of the three wrappers.

``CarryStore`` on its own: LRU spill to SQLite and back, retention by count and by age (with a fake clock),
the SQLite file and the safetensors file surviving a restart. The wrappers (each of memory, tool, reasoning,
on the session's tiny brain): conversations never see each other's carry, a follow-up differs with and without
carry, ``reset_carry`` gives back the fresh output exactly, the same input and carry give the same output,
``save_carry``/``load_carry`` into a new wrapper reproduce the outputs exactly, and an 8-thread load loses no
call and leaves every conversation with the carry of a sequential replay.

Run: python -m pytest tests/test_carry.py -q
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from dexter_brain import CarryStore, MemoryTRM, ReasoningTRM, ToolTRM, UnifiedConsciousness
from dexter_brain.config import InferConfig

KINDS = ("memory", "tool", "reasoning")
WRAPPERS = {"memory": MemoryTRM, "tool": ToolTRM, "reasoning": ReasoningTRM}
TOOLS = ["media.play_music", "media.set_volume", "web.search", "weather.get_forecast", "calendar.list_events"]


def state(seed: float, shape=(2, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(shape[0] * shape[1], dtype=torch.float32).reshape(shape) + seed
    return y, -y


class FakeClock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- CarryStore -------------------------------------------------------------------------------------------
def test_put_get_merges_extra_and_counts_turns():
    store = CarryStore()
    store.put("a", *state(1), last_tool="web.search")
    carry = store.put("a", *state(2), note="x")
    assert carry.turns == 2 and carry.extra == {"last_tool": "web.search", "note": "x"}
    got = store.get("a")
    assert torch.equal(got.y, state(2)[0]) and torch.equal(got.z, state(2)[1])
    assert store.get("b") is None and "a" in store and "b" not in store and len(store) == 1


def test_put_keeps_a_copy():
    store = CarryStore()
    y, z = state(1)
    store.put("a", y, z)
    y.add_(100)
    assert torch.equal(store.get("a").y, state(1)[0])


def test_reset_one_or_all(tmp_path):
    store = CarryStore(max_in_memory=1, path=tmp_path / "carries.db")
    for cid in "abc":
        store.put(cid, *state(0))
    store.reset("b")
    assert store.conversations() == ["c", "a"] and len(store) == 2
    store.reset()
    assert len(store) == 0 and store.get("a") is None


def test_least_recently_used_spill_to_sqlite_and_back(tmp_path):
    path = tmp_path / "carries.db"
    store = CarryStore(max_in_memory=2, path=path)
    for i, cid in enumerate("abc"):
        store.put(cid, *state(i), last_tool=f"tool{i}")
    on_disk = lambda: sorted(r[0] for r in sqlite3.connect(path).execute("SELECT conversation_id FROM carries"))
    assert on_disk() == ["a"] and len(store) == 3
    a = store.get("a")  # back from SQLite into memory; "b" is now the least recently used
    assert torch.equal(a.y, state(0)[0]) and torch.equal(a.z, state(0)[1])
    assert a.extra == {"last_tool": "tool0"} and a.turns == 1
    assert on_disk() == ["b"]
    b = store.put("b", *state(5))  # an update of a spilled carry keeps its extra and turn count
    assert b.turns == 2 and b.extra == {"last_tool": "tool1"} and on_disk() == ["c"]


def test_without_a_file_spilled_carries_are_dropped():
    store = CarryStore(max_in_memory=2)
    for i, cid in enumerate("abc"):
        store.put(cid, *state(i))
    assert store.get("a") is None and store.conversations() == ["b", "c"]


def test_sqlite_file_survives_a_restart(tmp_path):
    path = tmp_path / "carries.db"
    store = CarryStore(max_in_memory=1, path=path)
    store.put("a", *state(1), last_tool="web.search")
    store.put("b", *state(2))
    again = CarryStore(max_in_memory=1, path=path)
    carry = again.get("a")
    assert torch.equal(carry.y, state(1)[0]) and carry.extra == {"last_tool": "web.search"}


@pytest.mark.parametrize("with_file", [False, True])
def test_retention_by_count_drops_the_oldest(tmp_path, with_file):
    clock = FakeClock()
    store = CarryStore(max_in_memory=2, max_conversations=3, clock=clock,
                       path=tmp_path / "carries.db" if with_file else None)
    for cid in "abcde":
        clock.now += 1
        store.put(cid, *state(0))
    assert len(store) == (3 if with_file else 2)
    assert store.get("a") is None and store.get("b") is None and store.get("e") is not None


@pytest.mark.parametrize("with_file", [False, True])
def test_retention_by_age(tmp_path, with_file):
    clock = FakeClock(0.0)
    store = CarryStore(max_in_memory=1, max_age_seconds=10, clock=clock,
                       path=tmp_path / "carries.db" if with_file else None)
    store.put("old", *state(0))
    clock.now = 5.0
    store.put("new", *state(1))  # with a file, "old" is spilled to SQLite here
    clock.now = 12.0
    assert (store.get("new") is not None) and store.get("old") is None
    clock.now = 16.0
    store.put("other", *state(2))  # a put also purges carries older than the limit
    assert store.conversations() == ["other"]


def test_save_load_round_trip(tmp_path):
    clock = FakeClock()
    store = CarryStore(max_in_memory=2, path=tmp_path / "carries.db", clock=clock)
    for i, cid in enumerate(["a", "b", "c"]):
        clock.now += 1
        store.put(cid, *state(i, shape=(3, 5)), last_tool=f"tool{i}")
    path = store.save(tmp_path / "carries.safetensors")
    again = CarryStore(clock=clock)
    assert again.load(path) == 3
    assert sorted(again.conversations()) == ["a", "b", "c"]
    for cid in "abc":
        want, got = store.get(cid), again.get(cid)
        assert torch.equal(got.y, want.y) and torch.equal(got.z, want.z)
        assert (got.extra, got.turns, got.updated_at) == (want.extra, want.turns, want.updated_at)
    empty = CarryStore().save(tmp_path / "empty.safetensors")
    assert CarryStore().load(empty) == 0


def test_load_rejects_a_missing_or_foreign_file(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError) as info:
        CarryStore().load(tmp_path / "nope.safetensors")
    assert str(info.value) == f"carry file not found: {tmp_path / 'nope.safetensors'}"
    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))
    with pytest.raises(ValueError) as info:
        CarryStore().load(tmp_path / "weights.safetensors")
    assert str(info.value) == f"{tmp_path / 'weights.safetensors'} is not a carry file (no 'carries' index)"


def test_bad_limits_are_rejected():
    with pytest.raises(ValueError, match="max_in_memory and max_conversations must be at least 1"):
        CarryStore(max_in_memory=0)


def test_the_first_drop_of_each_kind_is_logged_once(caplog):
    clock = FakeClock()
    store = CarryStore(max_in_memory=2, max_conversations=3, max_age_seconds=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="dexter_brain.wrappers.carry"):
        for cid in "abcd":  # "a" and then "b" leave memory, with no file to spill to
            store.put(cid, *state(0))
        clock.now += 61
        assert store.get("d") is None  # too old
        store.put("e", *state(0))
    assert [r.getMessage() for r in caplog.records] == [
        "carry of conversation 'a' dropped: more than 2 conversations are held in memory and there is no spill "
        "file (InferConfig.carry_max_in_memory, carry_path); its next call starts afresh. Later drops of this kind "
        "are not logged.",
        "carry of conversation 'd' dropped: it was not used for more than 60 s (InferConfig.carry_max_age_seconds); "
        "its next call starts afresh. Later drops of this kind are not logged."]


def test_retention_by_count_with_a_file_is_logged(tmp_path, caplog):
    store = CarryStore(max_in_memory=1, max_conversations=2, path=tmp_path / "carries.db")
    with caplog.at_level(logging.WARNING, logger="dexter_brain.wrappers.carry"):
        for cid in "abc":
            store.put(cid, *state(0))
    assert len(store) == 2 and store.get("a") is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["carry of conversation 'a' dropped"]
    assert "more than 2 conversations are held (InferConfig.carry_max_conversations)" in caplog.text


def test_infer_config_defaults_are_the_stores_defaults():
    config, store = InferConfig(), CarryStore()
    assert (config.carry_max_in_memory, config.carry_max_conversations, config.carry_max_age_seconds,
            config.carry_path) == (store.max_in_memory, store.max_conversations, store.max_age_seconds, store.path)
    assert (store.max_in_memory, store.max_conversations, store.max_age_seconds) == (1024, 100_000, 30 * 24 * 3600)


# --- the wrappers' carry ----------------------------------------------------------------------------------
def load(tiny_brain, kind: str, **kw):
    """A wrapper of the tiny brain. Tool and reasoning load their ``last/`` weights, which score with the
    trained recursive residual, so the latent carry shows in their outputs (``best/`` may be the floor alone,
    whose outputs no latent state changes); memory's carry also holds the focus and previous query its
    inputs read, which change the answer with or without the residual."""
    path = tiny_brain["models"] / kind / ("best" if kind == "memory" else "last")
    return WRAPPERS[kind].from_checkpoint(path, device="cpu", **kw)


def goal_of(wrapper) -> dict:
    return next(p for p in wrapper.featurizer.plans if len(p["steps"]) >= 3)


def first_turn(kind: str, wrapper, cid: str) -> dict:
    if kind == "memory":
        return wrapper.retrieve("What did I buy from John Lewis?", k=5, conversation_id=cid)
    if kind == "tool":
        return wrapper.select_tool("play some music", available_tools=TOOLS, conversation_id=cid)
    return wrapper.plan(goal_of(wrapper)["goal"], conversation_id=cid)


def other_turn(kind: str, wrapper, cid: str) -> dict:
    if kind == "memory":
        return wrapper.retrieve("When is my next dentist appointment?", k=5, conversation_id=cid)
    if kind == "tool":
        return wrapper.select_tool("what's the weather tomorrow", available_tools=TOOLS, conversation_id=cid)
    plan = wrapper.featurizer.plans[-1]
    return wrapper.plan(plan["goal"], conversation_id=cid)


def follow_up(kind: str, wrapper, cid: str) -> dict:
    if kind == "memory":
        return wrapper.retrieve("tell me more about that", k=5, conversation_id=cid)
    if kind == "tool":
        return wrapper.select_tool("a bit louder please", available_tools=TOOLS, conversation_id=cid)
    plan = goal_of(wrapper)
    return wrapper.next_step(plan["goal"], completed=plan["steps"][:1], conversation_id=cid)


@pytest.mark.parametrize("kind", KINDS)
def test_conversations_never_see_each_others_carry(tiny_brain, kind):
    w = load(tiny_brain, kind)
    a1 = first_turn(kind, w, "a")
    other_turn(kind, w, "b")
    a2 = follow_up(kind, w, "a")
    b2 = follow_up(kind, w, "b")
    alone = load(tiny_brain, kind)
    assert first_turn(kind, alone, "a") == a1 and follow_up(kind, alone, "a") == a2
    alone_b = load(tiny_brain, kind)
    other_turn(kind, alone_b, "b")
    assert follow_up(kind, alone_b, "b") == b2
    assert a2 != b2


@pytest.mark.parametrize("kind", KINDS)
def test_a_follow_up_differs_with_and_without_carry(tiny_brain, kind):
    with_carry, without = load(tiny_brain, kind), load(tiny_brain, kind, use_carry=False)
    first_turn(kind, with_carry, "c")
    first_turn(kind, without, "c")
    assert follow_up(kind, with_carry, "c") != follow_up(kind, without, "c")
    # Without carry every call starts fresh and nothing is kept.
    assert follow_up(kind, without, "c") == follow_up(kind, load(tiny_brain, kind), "fresh")
    assert len(without.core.carries) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_reset_carry_restores_the_fresh_output_exactly(tiny_brain, kind):
    fresh = follow_up(kind, load(tiny_brain, kind), "a")
    w = load(tiny_brain, kind)
    first_turn(kind, w, "a")
    first_turn(kind, w, "b")
    w.reset_carry("a")
    assert follow_up(kind, w, "a") == fresh
    assert w.core.carries.get("b") is not None  # only "a" was reset
    w.reset_carry()
    assert len(w.core.carries) == 0 and follow_up(kind, w, "b") == fresh


@pytest.mark.parametrize("kind", KINDS)
def test_same_input_and_carry_give_the_same_output(tiny_brain, kind):
    runs = []
    for _ in range(2):
        w = load(tiny_brain, kind)
        runs.append([first_turn(kind, w, "a"), follow_up(kind, w, "a"), follow_up(kind, w, "a")])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_carry_reproduces_outputs_in_a_new_wrapper(tiny_brain, tmp_path, kind):
    w = load(tiny_brain, kind)
    first_turn(kind, w, "a")
    other_turn(kind, w, "b")
    path = w.save_carry(tmp_path / f"{kind}.carry.safetensors")
    restarted = load(tiny_brain, kind)
    assert restarted.load_carry(path) == 2
    for cid in ("a", "b"):
        assert follow_up(kind, restarted, cid) == follow_up(kind, w, cid)


# --- concurrency ------------------------------------------------------------------------------------------
def test_eight_threads_lose_no_call_and_match_a_sequential_replay(tiny_brain):
    """200 calls over 8 conversations and the three wrappers, from 8 threads. Each (wrapper, conversation)
    always gets the same input, so its final carry depends only on how many calls it received, not on their
    order: a lost or overlapping update would show as a different carry or turn count."""
    calls = [(KINDS[(i // 8) % 3], f"c{i % 8}") for i in range(200)]

    def run(wrappers, kind, cid):
        turn = first_turn if int(cid[1:]) % 2 else follow_up
        return kind, cid, turn(kind, wrappers[kind], cid)

    concurrent = {kind: load(tiny_brain, kind) for kind in KINDS}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [f.result() for f in [pool.submit(run, concurrent, kind, cid) for kind, cid in calls]]
    sequential = {kind: load(tiny_brain, kind) for kind in KINDS}
    replay = [run(sequential, kind, cid) for kind, cid in calls]

    assert len(results) == len(calls)
    assert Counter(repr(r) for r in results) == Counter(repr(r) for r in replay)
    for kind in KINDS:
        expected = Counter(cid for k, cid in calls if k == kind)
        for cid, n in expected.items():
            got, want = concurrent[kind].core.carries.get(cid), sequential[kind].core.carries.get(cid)
            assert got.turns == want.turns == n
            assert torch.equal(got.y, want.y) and torch.equal(got.z, want.z) and got.extra == want.extra


@pytest.mark.parametrize("kind", ["memory", "tool"])
def test_batches_with_the_same_conversations_in_opposite_order_do_not_deadlock(tiny_brain, kind):
    w = load(tiny_brain, kind)
    finished = Counter()

    def batch(order):
        for _ in range(30):
            if kind == "memory":
                w.retrieve_many(["what did I buy", "tell me more"], conversation_ids=order)
            else:
                w.select_tool_many(["play music", "louder"], [TOOLS, TOOLS], conversation_ids=order)
            finished[order[0]] += 1

    # Daemon threads: a deadlocked pair must not keep the test process alive. A deadlock is declared when
    # neither thread finishes a call for 3 seconds (a call takes milliseconds).
    threads = [threading.Thread(target=batch, args=(order,), daemon=True) for order in (["a", "b"], ["b", "a"])]
    for t in threads:
        t.start()
    last, since = -1, time.monotonic()
    while any(t.is_alive() for t in threads) and time.monotonic() - since < 3:
        if sum(finished.values()) != last:
            last, since = sum(finished.values()), time.monotonic()
        time.sleep(0.05)
    assert not any(t.is_alive() for t in threads), f"deadlock after {dict(finished)} calls"


# --- carry limits set by the user ----------------------------------------------------------------------------
def test_infer_config_sets_the_carry_limits_of_a_wrapper(tiny_brain, tmp_path):
    config = InferConfig(carry_max_in_memory=2, carry_max_conversations=3, carry_max_age_seconds=600,
                         carry_path=tmp_path / "tool.carry.sqlite")
    tool = load(tiny_brain, "tool", infer_config=config)
    for cid in ["c1", "c2", "c3", "c4"]:
        tool.select_tool("play some music", available_tools=TOOLS, conversation_id=cid)
    store = tool.core.carries
    assert (store.max_in_memory, store.max_conversations, store.max_age_seconds) == (2, 3, 600)
    assert store.conversations() == ["c3", "c4", "c2"]  # c1 went by count; c2 waits in the file
    spilled = sqlite3.connect(tmp_path / "tool.carry.sqlite").execute("SELECT conversation_id FROM carries")
    assert [r[0] for r in spilled] == ["c2"]


def test_a_given_store_is_used_even_when_empty(tiny_brain):
    store = CarryStore(max_in_memory=5)
    tool = load(tiny_brain, "tool", carry_store=store)
    tool.select_tool("play some music", available_tools=TOOLS, conversation_id="c1")
    assert tool.core.carries is store and store.conversations() == ["c1"]


def test_from_dir_spills_each_trms_carries_to_its_own_file(tiny_brain, tmp_path):
    brain = UnifiedConsciousness.from_dir(tiny_brain["models"], device="cpu", carry_dir=tmp_path / "carries",
                                          infer_config=InferConfig(carry_max_in_memory=1))
    for cid in ["c1", "c2"]:
        brain.process("What did I buy from John Lewis?", conversation_id=cid)
    assert sorted(p.name for p in (tmp_path / "carries").iterdir()) == [
        "memory.carry.sqlite", "reasoning.carry.sqlite", "tool.carry.sqlite"]
    for kind in ("memory", "tool"):
        store = getattr(brain, kind).core.carries
        assert store.max_in_memory == 1 and store.path == tmp_path / "carries" / f"{kind}.carry.sqlite"
        spilled = sqlite3.connect(store.path).execute("SELECT conversation_id FROM carries").fetchall()
        assert spilled == [("c1",)]  # kept on disk, not dropped
    with pytest.raises(ValueError, match="give from_dir\\(carry_dir=...\\) instead"):
        UnifiedConsciousness.from_dir(tiny_brain["models"], device="cpu",
                                      infer_config=InferConfig(carry_path=tmp_path / "one.sqlite"))
