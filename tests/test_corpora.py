"""Tests for dexter_brain.corpora and its entry point pipelines/generate_trm_training_data.py.

Known answers for each miner on the hand-written travel-assistant raw directory (tests/fixtures/travel_raw,
see tests/conftest.py), a cooking-assistant directory built inline (nothing may depend on the sample's words),
the split (groups never separated, reserved tools named but trained like any other, duplicates across splits
unscored), the contamination check, byte-identical outputs, the stages resuming on their own, raw directories
holding a single source, the command line, and the real developer directories in ../shared/devdata (skipped
when absent; seal_tools is marked slow).

Run: python -m pytest tests/test_corpora.py -q
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from conftest import FIXTURES, TRAVEL_DB, make_travel_raw, write_brain_db
from dexter_brain.corpora import (
    ContaminationError, CorpusSettings, MemoryExample, ReasoningExample, ToolExample, check_contamination,
    generate_corpora,
)
from dexter_brain.corpora.memory import mine_memory
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.schema import complexity_of
from dexter_brain.corpora.split import assign_splits, keys_of, reserved_tools, split_of
from dexter_brain.corpora.tool import flatten_context, mine_tools
from dexter_brain.io import read_jsonl
from dexter_brain.raw import RawStore
from dexter_brain.vocab import UNK_ID, Vocabulary
from pipelines.generate_trm_training_data import check_written_contamination, ensure_sample, main

REPO_ROOT = Path(__file__).parents[1]
DEVDATA = REPO_ROOT.parent / "shared" / "devdata"
KINDS = ("memory", "tool", "reasoning")
SPLITS = ("train", "val", "test")
ROWS = {"memory": MemoryExample, "tool": ToolExample, "reasoning": ReasoningExample}
TRAVEL_TOOLS = ["calendar.addEvent", "car_rental.reserve", "currency.convert", "currency.rates", "flights.book",
                "flights.search", "hotels.book", "hotels.search", "trains.search", "visa.requirements",
                "weather.forecast"]


def load(out: Path, kind: str) -> list:
    """Every example of one corpus, all splits, as pydantic rows."""
    return [ROWS[kind].model_validate(r) for s in SPLITS for r in read_jsonl(out / kind / f"{s}.jsonl")]


def by_id(out: Path, kind: str) -> dict:
    return {e.id: e for e in load(out, kind)}


def sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- memory ------------------------------------------------------------------------------------------
def test_memory_bank_holds_every_fact_with_its_entity_and_source(travel_corpora):
    out, manifest = travel_corpora
    bank = {r["id"]: r for r in read_jsonl(out / "memory" / "bank.jsonl")}
    assert list(bank) == [f"t{i}" for i in range(1, 14)] + ["b1", "b2", "b3"]
    assert manifest["corpora"]["memory"]["facts"] == 16
    assert bank["t4"]["entity"] == "Hotel Avenida"  # no entity field: taken from its triple
    assert bank["t11"]["entity"] is None and bank["b2"]["entity"] is None
    assert bank["t4"]["source"] == "d2_memory.json:facts[3]"
    assert bank["b1"]["source"] == "brain.db:facts#rowid=1"


def test_memory_examples_from_conversations(travel_corpora):
    out, _ = travel_corpora
    ids = {e.id for e in load(out, "memory") if e.origin in ("memory_refs", "inherited", "no_refs")}
    assert ids == {"mem:trip-lisbon:0", "mem:trip-lisbon:1", "mem:trip-lisbon:2", "mem:trip-lisbon:3",
                   "mem:loyalty:0", "mem:loyalty:1", "mem:loyalty:2",
                   "mem:trip-kyoto:0", "mem:trip-kyoto:1", "mem:trip-kyoto:2",
                   "mem:h-docs:0", "mem:h-docs:1", "mem:h-global:0"}  # "small-talk" references nothing


def test_memory_refs_turn(travel_corpora):
    out, _ = travel_corpora
    e = by_id(out, "memory")["mem:trip-lisbon:1"]
    assert (e.query, e.positives, e.origin, e.is_followup) == (
        "When does my outbound flight to Lisbon leave?", ("t2",), "memory_refs", False)
    assert e.context == ("user: My Lisbon trip runs from 12 to 19 June", "assistant: Noted, I saved the dates.")
    assert e.source == "d2_memory.json:conversations[0].messages[2]"
    assert e.episode == e.group == "trip-lisbon" and e.turn == 1
    history = by_id(out, "memory")["mem:h-docs:1"]
    assert history.positives == ("t10", "t5") and history.source == "brain.db:history#rowid=3"



@pytest.mark.parametrize("example_id, origin, positives, is_followup", [
    ("mem:trip-lisbon:2", "memory_refs", ("t3",), True),  # "and the return flight?": the Kyoto trip has one too
    ("mem:trip-lisbon:3", "inherited", ("t3",), True),  # "tell me more about that one": no refs, anaphoric
    ("mem:loyalty:1", "memory_refs", ("t7",), True),  # "what status is it?"
    ("mem:loyalty:2", "memory_refs", ("t9",), False),  # "And my Bonvoy points?" names an alias
    ("mem:trip-kyoto:2", "memory_refs", ("t6",), False),  # "... for the Japan trip?" names an alias
    ("mem:h-docs:1", "memory_refs", ("t10", "t5"), False),  # names the Kyoto trip
    ("mem:trip-kyoto:0", "no_refs", (), False),
])
def test_follow_ups(travel_corpora, example_id, origin, positives, is_followup):
    e = by_id(travel_corpora[0], "memory")[example_id]
    assert (e.origin, e.positives, e.is_followup) == (origin, positives, is_followup)
    assert (e.difficulty == 2) == is_followup


def test_generated_memory_examples_are_train_only(travel_corpora):
    out, manifest = travel_corpora
    examples = by_id(out, "memory")
    generated = [e for e in examples.values() if e.origin in ("provenance", "triple", "pseudo")]
    assert {e.group for e in generated} == {"bank"} and {e.split for e in generated} == {"train"}
    assert manifest["corpora"]["memory"]["origins"] == {
        "inherited": 1, "memory_refs": 9, "no_refs": 3, "provenance": 3, "pseudo": 16, "triple": 4}
    prov = examples["mem:prov:t6"]
    assert (prov.query, prov.positives) == ("I put a ryokan in Gion on hold until 30 September", ("t6",))
    triple = next(e for e in generated if e.origin == "triple" and e.positives == ("t4",))
    assert triple.query in ("What is the confirmation number of Hotel Avenida?",
                            "What is the confirmation number of the Avenida?")
    pseudo = examples["mem:pseudo:t9:0"]
    assert pseudo.positives == ("t9",) and pseudo.query.split()[0] in ("Marriott", "Bonvoy", "my")


# --- tool --------------------------------------------------------------------------------------------
def test_catalogue_keeps_tools_that_never_succeed(travel_corpora):
    out, manifest = travel_corpora
    catalogue = {r["name"]: r for r in read_jsonl(out / "tool" / "catalogue.jsonl")}
    assert list(catalogue) == TRAVEL_TOOLS
    assert (catalogue["trains.search"]["successes"], catalogue["trains.search"]["errors"]) == (0, 2)
    assert (catalogue["currency.rates"]["successes"], catalogue["currency.rates"]["errors"]) == (0, 1)
    assert catalogue["calendar.addEvent"] == {"name": "calendar.addEvent", "calls": 0, "successes": 0, "errors": 0,
                                             "description": "Add an event to the user's calendar"}
    # art_1.json: a-1 repeats a logged call (counted once), a-3 has no task (counted, no example)
    assert catalogue["weather.forecast"]["calls"] == 4 and catalogue["flights.book"]["calls"] == 3
    assert manifest["corpora"]["tool"]["tools"] == 11 and manifest["corpora"]["tool"]["total"] == 23


def test_error_retry_becomes_a_correction_example(travel_corpora):
    out, manifest = travel_corpora
    examples = by_id(out, "tool")
    failed, fixed = examples["tool:c-lis:0"], examples["tool:c-lis:1"]
    assert (failed.tool, failed.status, failed.error, failed.is_correction) == (
        "trains.search", "error", "no rail route between Boston and Lisbon", False)
    assert (fixed.tool, fixed.previous_tool, fixed.previous_error, fixed.is_correction, fixed.difficulty) == (
        "flights.search", "trains.search", "no rail route between Boston and Lisbon", True, 2)
    assert fixed.context == 'screen: trip; trip: Lisbon'
    assert examples["tool:c-lis:6"].previous_tool == "currency.rates" and examples["tool:c-lis:6"].is_correction
    after_unrelated_failure = examples["tool:c-kyo:5"]  # a different task after a failed train search
    assert after_unrelated_failure.previous_tool == "trains.search" and not after_unrelated_failure.is_correction
    assert [e.id for e in examples.values() if e.is_correction] == ["tool:c-lis:1", "tool:c-lis:6"]
    assert manifest["corpora"]["tool"]["correction_fraction"] == round(2 / 23, 4)
    assert manifest["corpora"]["tool"]["errors"] == 4


def test_available_tools_fall_back_to_the_catalogue(travel_corpora):
    examples = {e.task: e for e in load(travel_corpora[0], "tool")}
    assert examples["Search flights to Madrid next weekend"].available == tuple(TRAVEL_TOOLS)
    assert examples["Will it rain in Kyoto on 3 November?"].available == tuple(TRAVEL_TOOLS)  # an artifact
    assert examples["Forecast for Madrid tomorrow"].available == ("weather.forecast",)
    assert examples["Book the TP 202 flight for 12 June"].available == ("flights.search", "flights.book")


@pytest.mark.parametrize("ui_context, expected", [
    (None, ""),
    ({}, ""),
    ({"screen": "trip", "empty": "", "none": None, "list": []}, "screen: trip"),
    ({"b": {"y": 1, "x": "é"}, "a": [1, 2]}, 'a: [1, 2]; b: {"x": "é", "y": 1}'),
])
def test_flatten_context(ui_context, expected):
    assert flatten_context(ui_context) == expected


# --- reasoning ---------------------------------------------------------------------------------------
def test_plan_and_next_step_examples(travel_corpora):
    out, manifest = travel_corpora
    examples = by_id(out, "reasoning")
    plan = examples["plan:pattern:p-refund"]
    steps = ("find the booking reference", "check the airline refund policy", "submit the refund request",
             "track the refund status")
    assert (plan.kind, plan.goal, plan.steps, plan.complexity) == (
        "plan", "Get a refund for a cancelled flight", steps, "moderate")
    nexts = [examples[f"next:pattern:p-refund:{k}"] for k in range(5)]
    assert [e.completed for e in nexts] == [steps[:k] for k in range(5)]
    assert [e.next_step for e in nexts] == [*steps, None]  # None: the plan is done
    assert {e.episode for e in nexts} == {plan.episode} and [e.turn for e in [plan, *nexts]] == list(range(6))
    assert "next:pattern:p-refund:5" not in examples
    summary = examples["plan:summary:trip-lisbon"]
    assert summary.state == "User confirmed the Lisbon flights and dates." and len(summary.steps) == 3
    assert manifest["corpora"]["reasoning"]["plans"] == 7 and manifest["corpora"]["reasoning"]["total"] == 44
    assert manifest["corpora"]["reasoning"]["complexity"] == {"complex": 1, "moderate": 3, "simple": 3}
    assert examples["plan:pattern:p-intl"].complexity == "complex"


@pytest.mark.parametrize("num_steps, expected", [
    (1, "simple"), (3, "simple"), (4, "moderate"), (6, "moderate"), (7, "complex"), (20, "complex")])
def test_complexity_labels(num_steps, expected):
    assert complexity_of(num_steps) == expected


# --- split -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    """The travel fixture mined but not split: {kind: examples}, and the tool catalogue."""
    store = RawStore.load(make_travel_raw(tmp_path_factory.mktemp("mined")), show_progress_bar=False)
    catalogue, tools = mine_tools(store)
    return {"memory": mine_memory(store, CorpusSettings())[1], "tool": tools,
            "reasoning": mine_reasoning(store)}, catalogue


def test_written_split_never_separates_a_conversation(travel_corpora):
    out, _ = travel_corpora
    for kind in KINDS:
        split_of_group, split_of_episode = defaultdict(set), defaultdict(set)
        for e in load(out, kind):
            split_of_group[e.group].add(e.split)
            split_of_episode[e.episode].add(e.split)
        assert all(len(s) == 1 for s in split_of_group.values()), kind
        assert all(len(s) == 1 for s in split_of_episode.values()), kind


@pytest.mark.parametrize("seed", range(8))
def test_split_by_group_for_any_seed(mined, seed):
    corpora, catalogue = mined
    for kind, examples in corpora.items():
        split, _ = assign_splits(examples, seed, (0.8, 0.1, 0.1))
        assert [e.id for e in split] == [e.id for e in examples]  # order kept
        groups = defaultdict(set)
        hashed = {e.group: split_of(e.group, seed, (0.8, 0.1, 0.1)) for e in split}
        for e in split:
            groups[e.group].add(e.split)
            # The hash decides, except that a split it left empty takes one train group.
            assert e.split == hashed[e.group] or (hashed[e.group] == "train" and e.split not in hashed.values())
        assert all(len(s) == 1 for s in groups.values())
        check_contamination(split, kind)


def test_reserved_tools_are_named_and_still_trained(travel_corpora):
    out, manifest = travel_corpora
    reserved = manifest["corpora"]["tool"]["reserved_tools"]
    assert len(reserved) == 1  # 8 tools succeed: round(0.8) = 1, chosen by a hash of the names
    examples = load(out, "tool")
    # Its calls split like any other (here some train): the model a user gets knows every tool.
    assert "train" in {e.split for e in examples if e.tool in reserved}
    for split in SPLITS:
        rows = [e for e in examples if e.split == split]
        if rows:
            tensors = load_file(out / "tensors" / f"tool_{split}.safetensors")
            assert tensors["reserved"].tolist() == [int(e.tool in reserved) for e in rows]


def test_too_few_tools_reserve_none(mined):
    corpora, catalogue = mined
    few = [e for e in corpora["tool"] if e.tool in ("flights.search", "hotels.book")]
    assert reserved_tools(catalogue, few, 0.1, 0) == ()


def _tool(group: str, task: str, **kw) -> ToolExample:
    return ToolExample(id=f"tool:{group}:0", episode=group, turn=0, group=group, difficulty=0, source="x",
                       task=task, available=("a", "b"), tool="a", status="success", **kw)


@pytest.mark.parametrize("duplicate", [
    "Convert 500 dollars to euros",
    "convert 500 DOLLARS to euros!!",  # normalised text
    "euros: convert 500 dollars",  # reordered: same bag of content words
])
def test_duplicates_across_splits_are_unscored(duplicate):
    assert split_of("beta", 0, (0.8, 0.1, 0.1)) == "train"
    examples = [_tool("beta", "Convert 500 dollars to euros"), _tool("alpha", duplicate), _tool("gamma", "Other")]
    split, unscored = assign_splits(examples, 0, (0.8, 0.1, 0.1))
    later = split[1].split
    assert later != "train" and split_of("alpha", 0, (0.8, 0.1, 0.1)) == later
    assert [(e.split, e.scored) for e in split] == [("train", True), (later, False), (split[2].split, True)]
    assert unscored == 1
    check_contamination(split, "tool")  # an unscored duplicate is no leak
    with pytest.raises(ContaminationError):
        check_contamination([e.model_copy(update={"scored": True}) for e in split], "tool")


def test_follow_up_keys_include_the_previous_user_turn():
    def followup(context: tuple[str, ...]) -> MemoryExample:
        return MemoryExample(id="m", episode="e", turn=1, group="g", difficulty=2, source="x", query="tell me more",
                             positives=("f",), context=context, is_followup=True, origin="inherited")
    a = keys_of(followup(("user: Where is the Lisbon hotel?", "assistant: Avenida.")))
    b = keys_of(followup(("user: What about the Kyoto ryokan?",)))
    assert a[0] == "user where is the lisbon hotel tell me more" and a != b


# --- contamination -----------------------------------------------------------------------------------
def test_contamination_check_passes_on_a_clean_build(travel_corpora):
    out, _ = travel_corpora
    assert check_written_contamination(out) == {"memory": 36, "tool": 23, "reasoning": 44}


def test_contamination_check_catches_a_planted_leak(travel_corpora):
    examples = load(travel_corpora[0], "tool")
    test = next(e for e in examples if e.split == "test")
    leaked = examples + [test.model_copy(update={"id": "tool:leak:0", "split": "train", "group": "leak"})]
    with pytest.raises(ContaminationError, match=r"^tool: 1 test example\(s\) also appear in train, e\.g\. "):
        check_contamination(leaked, "tool")


# --- outputs -----------------------------------------------------------------------------------------
def test_manifest(travel_corpora, travel_raw_dir):
    out, manifest = travel_corpora
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["settings"] == CorpusSettings().model_dump(mode="json")
    assert manifest["sources"] == {name: hashlib.sha256((travel_raw_dir / name).read_bytes()).hexdigest()
                                   for name in ("art_1.json", "brain.db", "d2_memory.json",
                                                "training_data_fast.jsonl")}
    for kind in KINDS:
        entry = manifest["corpora"][kind]
        assert set(entry["sha256"]) == set(SPLITS) and "empty_reason" not in entry
        assert entry["splits"] == {s: len(read_jsonl(out / kind / f"{s}.jsonl")) for s in SPLITS}
    assert manifest["corpora"]["memory"]["splits"] == {"train": 30, "val": 3, "test": 3}
    assert manifest["corpora"]["tool"]["splits"] == {"train": 21, "val": 1, "test": 1}
    assert manifest["corpora"]["reasoning"]["splits"] == {"train": 25, "val": 12, "test": 7}
    assert manifest["corpora"]["memory"]["followup_fraction"] == round(3 / 13, 4)  # of the conversation turns


def test_tensors_match_the_split_files(travel_corpora):
    out, _ = travel_corpora
    for kind in KINDS:
        for split in SPLITS:
            rows = read_jsonl(out / kind / f"{split}.jsonl")
            path = out / "tensors" / f"{kind}_{split}.safetensors"
            assert path.exists() == bool(rows), path
            if rows:
                arrays = load_file(path)
                for column in ("query_ids", "query_feats", "cand_index", "cand_feats", "episode", "turn"):
                    assert arrays[column].shape[0] == len(rows), (path, column)
                assert arrays["scored"].tolist() == [int(r["scored"]) for r in rows]
                assert arrays["turn"].tolist() == [r["turn"] for r in rows]
    assert load_file(out / "tensors" / "tool_bank.safetensors")["ids"].shape[0] == len(TRAVEL_TOOLS)
    assert load_file(out / "tensors" / "memory_bank.safetensors")["ids"].shape[0] == 16


def test_vocabulary_is_trained_on_the_train_split_only(travel_corpora):
    out, manifest = travel_corpora
    vocab = Vocabulary.from_file(out / "vocab")
    assert vocab.vocab_size == manifest["vocab"]["vocab_size"] < 8000  # shrunk for tiny data
    # "embassy" occurs only in a plan that landed in test (p-visa)
    assert {e.split for e in load(out, "reasoning") if "embassy" in " ".join(e.steps)} == {"test"}
    assert vocab.sp.piece_to_id("▁embassy") == UNK_ID


def test_each_stage_resumes_on_its_own(tmp_path, travel_raw_dir):
    out = tmp_path / "out"
    first = generate_corpora(travel_raw_dir, out, show_progress_bar=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    # Nothing changed: every stage is skipped and no file is rewritten.
    assert generate_corpora(travel_raw_dir, out, show_progress_bar=False) == first
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    # The tensors (the last stage) gone, as after a kill during it: only they are made again, identical.
    before = {p.name: p.read_bytes() for p in (out / "tensors").iterdir()}
    shutil.rmtree(out / "tensors")
    (out / "manifest.json").unlink()
    assert generate_corpora(travel_raw_dir, out, show_progress_bar=False) == first
    assert {p.name: p.read_bytes() for p in (out / "tensors").iterdir()} == before
    assert (out / "vocab" / "tokenizer.model").stat().st_mtime_ns == stamps[out / "vocab" / "tokenizer.model"]
    # Another raw directory: every stage runs again.
    lines = (travel_raw_dir / "training_data_fast.jsonl").read_text().splitlines()
    (travel_raw_dir / "training_data_fast.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    changed = generate_corpora(travel_raw_dir, out, show_progress_bar=False)
    assert changed["fingerprint"] != first["fingerprint"]
    assert json.loads((out / "stages.json").read_text()).keys() == {"corpora", "vocab", "tensors"}


def test_same_inputs_and_seed_give_byte_identical_outputs(tmp_path):
    raw = make_travel_raw(tmp_path / "raw")
    first = generate_corpora(raw, tmp_path / "a", show_progress_bar=False)
    second = generate_corpora(raw, tmp_path / "b", show_progress_bar=False)
    assert first == second
    files = sha256_tree(tmp_path / "a")
    assert {"vocab/tokenizer.model", "tensors/tool_train.safetensors", "manifest.json"} <= set(files)
    assert files == sha256_tree(tmp_path / "b")


def test_outputs_do_not_depend_on_the_hash_seed(tmp_path, travel_corpora):
    code = ("import sys; from pathlib import Path; from conftest import make_travel_raw; "
            "from dexter_brain.corpora import generate_corpora; "
            "generate_corpora(make_travel_raw(Path(sys.argv[1])), sys.argv[2], show_progress_bar=False)")
    env = dict(os.environ, PYTHONHASHSEED="12345",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]))
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "raw"), str(tmp_path / "out")], env=env,
                   check=True, capture_output=True)
    assert sha256_tree(tmp_path / "out") == sha256_tree(travel_corpora[0])


def test_another_seed_gives_another_split(tmp_path, travel_corpora):
    raw = make_travel_raw(tmp_path / "raw")
    manifest = generate_corpora(raw, tmp_path / "out", CorpusSettings(seed=1, vocab_size=600),
                                show_progress_bar=False)
    assert manifest["settings"]["seed"] == 1
    assert manifest["fingerprint"] != travel_corpora[1]["fingerprint"]


# --- raw directories with a single source ------------------------------------------------------------
NO_FACTS = "no facts (d2_memory.json facts or brain.db facts)"
NO_CALLS = "no tool calls with a task (training_data_fast.jsonl or art_*.json)"
NO_PLANS = "no plans (brain.db patterns or summaries with goal and steps)"


@pytest.mark.parametrize("source, empty", [
    ("training_data_fast.jsonl", {"memory": NO_FACTS, "reasoning": NO_PLANS}),
    ("art_1.json", {"memory": NO_FACTS, "reasoning": NO_PLANS}),
    ("d2_memory.json", {"tool": NO_CALLS}),  # its summary is a plan
    ("brain.db", {"tool": NO_CALLS}),  # facts, history with refs, patterns
])
def test_a_single_source_yields_what_it_can(tmp_path, source, empty):
    raw = tmp_path / "raw"
    raw.mkdir()
    if source == "brain.db":
        write_brain_db(raw / source, TRAVEL_DB)
    else:
        shutil.copyfile(FIXTURES / "travel_raw" / source, raw / source)
    manifest = generate_corpora(raw, tmp_path / "out", show_progress_bar=False)
    assert list(manifest["sources"]) == [source]
    for kind in KINDS:
        entry = manifest["corpora"][kind]
        assert entry.get("empty_reason") == empty.get(kind), kind
        assert (entry["total"] == 0) == (kind in empty), kind
    check_written_contamination(tmp_path / "out")


def test_tool_log_alone_whose_only_conversation_is_not_train(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = (FIXTURES / "travel_raw" / "training_data_fast.jsonl").read_text().splitlines()[:2]
    (raw / "training_data_fast.jsonl").write_text("\n".join(lines) + "\n")
    assert split_of("c-lis", 2, (0.8, 0.1, 0.1)) == "val"
    manifest = generate_corpora(raw, tmp_path / "out", CorpusSettings(seed=2), show_progress_bar=False)
    assert manifest["corpora"]["tool"]["splits"] == {"train": 0, "val": 2, "test": 0}
    # Nothing to train on and no floor to fit: no tensors (the JSONL rows are still there to evaluate on).
    assert not (tmp_path / "out" / "tensors").exists() or not any((tmp_path / "out" / "tensors").iterdir())
    assert len(read_jsonl(tmp_path / "out" / "tool" / "val.jsonl")) == 2


# --- another domain ----------------------------------------------------------------------------------
COOKING_MEMORY = {
    "entities": [{"name": "sourdough starter", "aliases": ["the starter"]},
                 {"name": "Sunday roast", "aliases": ["the roast"]}],
    "facts": [
        {"id": "k1", "text": "The sourdough starter is fed every morning with rye flour",
         "entity": "sourdough starter"},
        {"id": "k2", "text": "The sourdough starter lives in the fridge on weekdays", "entity": "sourdough starter"},
        {"id": "k3", "text": "The Sunday roast is a leg of lamb for six people", "entity": "Sunday roast"},
        {"id": "k4", "text": "The Sunday roast needs two hours at 180 degrees", "entity": "Sunday roast"},
        {"id": "k5", "text": "Maya is allergic to peanuts", "topic": "allergies"},
    ],
    "conversations": [
        {"id": "bake", "messages": [
            {"role": "user", "content": "How often do I feed the starter?", "memory_refs": ["k1"]},
            {"role": "assistant", "content": "Every morning, with rye."},
            {"role": "user", "content": "where do I keep it?", "memory_refs": ["k2"]},
            {"role": "assistant", "content": "In the fridge on weekdays."},
            {"role": "user", "content": "and what else?"},
        ]},
        {"id": "roast", "messages": [
            {"role": "user", "content": "How long does the Sunday roast cook?", "memory_refs": ["k4"]},
            {"role": "user", "content": "Any allergies among the guests?", "memory_refs": ["k5"]},
        ]},
    ],
}
COOKING_CALLS = [
    {"conversation_id": "k-1", "ts": 1717000000, "task": "Set a timer for 40 minutes", "tool": "timer.set",
     "available_tools": ["timer.set", "alarm.set"], "status": "failed", "error": "timer service offline"},
    {"conversation_id": "k-1", "ts": 1717000005, "task": "Set a timer for 40 minutes", "tool": "alarm.set",
     "available_tools": ["timer.set", "alarm.set"], "status": "ok"},
    {"conversation_id": "k-1", "ts": 1717000100, "task": "Find a vegan lasagne recipe", "tool": "recipes.search",
     "status": "success"},
    {"conversation_id": "k-2", "task": "Do we have rye flour?", "tool": "pantry.check", "status": "success"},
    {"conversation_id": "k-2", "task": "Add rye flour to the shopping list", "tool": "shopping_list.add",
     "status": "success"},
    {"task": "Preheat the oven to 220 degrees", "tool": "oven.preheat", "status": "success"},
    {"task": "How many cups are 200 grams of flour?", "tool": "units.convert", "status": "success"},
]
COOKING_PLANS = [
    {"id": "bread", "goal": "Bake sourdough bread", "steps": json.dumps([
        "feed the starter", "mix flour and water", "rest the dough", "add salt", "stretch and fold",
        "shape the loaf", "proof overnight", "bake in a dutch oven"])},
    {"id": "dressing", "goal": "Make a vinaigrette", "steps": json.dumps([
        "mince a shallot", "whisk mustard and vinegar", "drizzle in the oil"])},
    {"id": "chicken", "goal": "Roast a chicken", "steps": json.dumps([
        "dry the skin", "season generously", "roast at 220 degrees", "check the thigh temperature",
        "rest before carving"])},
]


def test_a_cooking_assistant_mines_into_sensible_corpora(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "d2_memory.json").write_text(json.dumps(COOKING_MEMORY))
    (raw / "training_data_fast.jsonl").write_text("".join(json.dumps(c) + "\n" for c in COOKING_CALLS))
    write_brain_db(raw / "brain.db", {"patterns": COOKING_PLANS})
    manifest = generate_corpora(raw, tmp_path / "out", show_progress_bar=False)
    out = tmp_path / "out"
    memory = by_id(out, "memory")
    assert memory["mem:bake:0"].positives == ("k1",) and not memory["mem:bake:0"].is_followup
    assert memory["mem:bake:1"].is_followup  # "where do I keep it?"
    assert (memory["mem:bake:2"].origin, memory["mem:bake:2"].positives) == ("inherited", ("k2",))
    assert not memory["mem:roast:1"].is_followup  # about another thing than the previous turn
    tools = by_id(out, "tool")
    fixed = tools["tool:k-1:1"]
    assert (fixed.tool, fixed.previous_tool, fixed.previous_error, fixed.is_correction) == (
        "alarm.set", "timer.set", "timer service offline", True)
    assert len(tools["tool:k-1:2"].available) == 7  # no list given: the whole catalogue
    assert manifest["corpora"]["reasoning"]["complexity"] == {"complex": 1, "moderate": 1, "simple": 1}
    bread = [e for e in load(out, "reasoning") if e.plan_id == "pattern:bread"]
    assert len(bread) == 10 and bread[-1].next_step is None
    assert all(manifest["corpora"][k]["total"] > 0 for k in KINDS)


# --- command line ------------------------------------------------------------------------------------
def test_cli_generates_and_prints_one_line(tmp_path, capsys, travel_raw_dir):
    out = tmp_path / "out"
    assert main(["--raw", str(travel_raw_dir), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (f"memory 30/3/3, tool 21/1/1, reasoning 25/12/7 (train/val/test); follow-ups 23.1 %, "
                            f"corrections 8.7 %; wrote {out}\n")
    assert (out / "manifest.json").exists()


def test_cli_config_file_and_flags_override_it(tmp_path, capsys, travel_raw_dir):
    config = tmp_path / "corpus.json"
    config.write_text(CorpusSettings(seed=3, vocab_size=600, pseudo_queries_per_fact=2).model_dump_json())
    out = tmp_path / "out"
    assert main(["--raw", str(travel_raw_dir), "--out", str(out), "--config", str(config), "--seed", "5",
                 "--quiet"]) == 0
    settings = json.loads((out / "manifest.json").read_text())["settings"]
    assert (settings["seed"], settings["vocab_size"], settings["pseudo_queries_per_fact"]) == (5, 600, 2)


def test_cli_check_contamination_alone_on_an_existing_out(tmp_path, capsys, travel_raw_dir):
    out = tmp_path / "out"
    assert main(["--raw", str(travel_raw_dir), "--out", str(out), "--quiet", "--check-contamination"]) == 0
    capsys.readouterr()
    assert main(["--out", str(out), "--check-contamination"]) == 0
    assert capsys.readouterr().out == (f"no contamination in {out}: memory 36 examples, tool 23 examples, "
                                       f"reasoning 44 examples\n")
    test = read_jsonl(out / "tool" / "test.jsonl")[0]
    with open(out / "tool" / "train.jsonl", "a") as f:
        f.write(json.dumps(dict(test, split="train", id="tool:leak:0")) + "\n")
    assert main(["--out", str(out), "--check-contamination"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"contamination: tool: 1 test example(s) also appear in train, e.g. {test['id']}: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("args, config, message", [
    (["--raw", "{tmp}/missing"], None,
     "error: Raw directory {tmp}/missing does not exist: looked for d2_memory.json, brain.db, "
     "training_data_fast.jsonl, art_*.json in it"),
    (["--check-contamination"], None,
     "error: no corpora in {tmp}/out: generate them first (run without --check-contamination, or add --raw DIR)"),
    (["--raw", "{tmp}"], '{"seed": 1, "vocab_sise": 500}',
     "invalid settings in {tmp}/config.json: vocab_sise: Extra inputs are not permitted"),
    (["--raw", "{tmp}"], '{"seed": "one"}',
     "invalid settings in {tmp}/config.json: seed: Input should be a valid integer, unable to parse string as an "
     "integer"),
    (["--raw", "{tmp}"], "{not json",
     "invalid settings in {tmp}/config.json: settings: Invalid JSON: key must be a string at line 1 column 2"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, config, message):
    argv = [a.format(tmp=tmp_path) for a in args] + ["--out", str(tmp_path / "out"), "--quiet"]
    if config is not None:
        (tmp_path / "config.json").write_text(config)
        argv += ["--config", str(tmp_path / "config.json")]
    assert main(argv) == 1
    assert capsys.readouterr().err == message.format(tmp=tmp_path) + "\n"


def test_cli_help_ends_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.rstrip().splitlines()[-1].startswith("  python -m pipelines.generate_trm_training_data ")
    for flag in ("--raw", "--out", "--seed", "--vocab-size", "--config", "--check-contamination", "--quiet"):
        assert flag in help_text


def test_cli_default_raw_is_the_sample_directory(tmp_path, monkeypatch, capsys):
    make_travel_raw(tmp_path / "datasets" / "raw" / "sample")  # already there: used as it is
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet"]) == 0
    assert capsys.readouterr().out.startswith("memory 30/3/3, tool 21/1/1, reasoning 25/12/7 (train/val/test)")
    assert (tmp_path / "datasets" / "offline" / "manifest.json").exists()


def test_ensure_sample_generates_only_when_missing(tmp_path):
    if not hasattr(pytest.importorskip("dexter_brain.sample"), "generate_sample"):
        pytest.skip("dexter_brain.sample.generate_sample is not there yet")
    sample = ensure_sample(tmp_path / "sample", seed=0, show_progress_bar=False)
    names = {p.name for p in sample.iterdir()}
    assert {"d2_memory.json", "brain.db", "training_data_fast.jsonl"} <= names
    stamp = {p.name: p.stat().st_mtime_ns for p in sample.iterdir()}
    assert ensure_sample(sample, seed=1, show_progress_bar=False) == sample
    assert {p.name: p.stat().st_mtime_ns for p in sample.iterdir()} == stamp  # left alone


@pytest.mark.slow
def test_cli_default_raw_generates_the_sample(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet"]) == 0
    assert any((tmp_path / "datasets" / "raw" / "sample").iterdir())
    assert capsys.readouterr().out.endswith("; wrote datasets/offline\n")


# --- the real developer directories ------------------------------------------------------------------
@pytest.mark.skipif(not DEVDATA.is_dir(), reason="../shared/devdata is not there")
@pytest.mark.parametrize("name, totals", [
    ("api_bank", {"memory": 0, "tool": 508, "reasoning": 50 + 36 * 3 + 14 * 4}),  # dialogues but no facts
    ("bfcl_memory", {"memory": 155 + 323 + 323, "tool": 0, "reasoning": 0}),  # refs, provenance, pseudo
    pytest.param("seal_tools", {"memory": 0, "tool": 494, "reasoning": 8162}, marks=pytest.mark.slow),
])
def test_devdata_mines_without_error(tmp_path, name, totals):
    manifest = generate_corpora(DEVDATA / name, tmp_path / "out", show_progress_bar=False)
    for kind in KINDS:
        entry = manifest["corpora"][kind]
        assert entry["total"] == totals[kind], kind
        assert ("empty_reason" in entry) == (totals[kind] == 0), kind
        if totals[kind]:
            assert entry["splits"]["train"] > 0 and entry["splits"]["val"] + entry["splits"]["test"] > 0, kind
    if name == "bfcl_memory":
        assert manifest["corpora"]["memory"]["origins"]["memory_refs"] == 155
    check_written_contamination(tmp_path / "out")


def test_few_groups_still_get_val_and_test():
    # Four groups the hash puts in train: one moves to test and one to val, whole, deterministically.
    groups = [g for g in (f"conv-{i}" for i in range(200)) if split_of(g, 0, (0.8, 0.1, 0.1)) == "train"][:4]
    examples = [_tool(g, f"Task {n} of {g}") for g in groups for n in range(3)]
    split, _ = assign_splits(examples, 0, (0.8, 0.1, 0.1))
    by_group = {e.group: {x.split for x in split if x.group == e.group} for e in split}
    assert sorted(s for (s,) in by_group.values()) == ["test", "train", "train", "val"]
    assert [e.split for e in assign_splits(examples, 0, (0.8, 0.1, 0.1))[0]] == [e.split for e in split]
    # Two groups are too few to hold one out: both stay in train.
    two = [e for e in examples if e.group in groups[:2]]
    assert {e.split for e in assign_splits(two, 0, (0.8, 0.1, 0.1))[0]} == {"train"}
