"""Tests for dexter_brain.bank: round trip, adds and removes (at once and after reopening), FTS5 search and
query quoting, replace_all atomicity, refused files, readers beside a writer, and a writer killed mid-batch.
Every bank is a real SQLite file in tmp_path.

Run: python -m pytest tests/test_bank.py -q
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dexter_brain.bank import BankError, MemoryBank, index_terms, match_expression
from dexter_brain.lexical import content_words

REPO = Path(__file__).resolve().parents[1]
DIM = 8

FACTS = [
    {"id": "f1", "text": "The shop site runs on Shopify", "source": "d2_memory.json:facts[0]", "entity": "shop site",
     "topic": "websites", "created_at": "2024-05-01T10:00:00+00:00", "neighbours": ["f2"]},
    {"id": "f2", "text": "The shop site sells handmade candles", "source": "d2_memory.json:facts[1]",
     "entity": "shop site", "topic": "websites", "created_at": None, "neighbours": ["f1"]},
    {"id": "f3", "text": "Dana's birthday is on 3 March", "source": "brain.db:facts#rowid=1", "entity": "Dana",
     "topic": None, "created_at": "2023-01-02T00:00:00+00:00", "neighbours": []},
    {"id": "f4", "text": "Passport expires in August 2027", "source": "brain.db:facts#rowid=2", "entity": "passport",
     "topic": "documents", "created_at": None, "neighbours": []},
    {"id": "f5", "text": "The dentist appointment is on Friday at 9", "source": "add_memory", "entity": None,
     "topic": None, "created_at": None, "neighbours": []},
    {"id": "f6", "text": "Café Lumière does the best croissants", "source": "add_memory", "entity": None,
     "topic": "food", "created_at": None, "neighbours": []},
]


def vectors_for(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def bank(tmp_path):
    with MemoryBank.create(tmp_path / "bank.sqlite", FACTS, vectors_for(len(FACTS)), encoder="enc-1") as bank:
        yield bank


def fact(fact_id: str, text: str) -> dict:
    return {"id": fact_id, "text": text, "source": "test"}


def test_round_trip_keeps_facts_vectors_and_search(tmp_path):
    path = tmp_path / "bank.sqlite"
    vectors = vectors_for(len(FACTS))
    with MemoryBank.create(path, FACTS, vectors, vector_dtype="float16", encoder="enc-1") as bank:
        before = (list(bank.facts()), bank.search(["shop", "candles"]), bank.vectors().copy())
    assert not path.with_name("bank.sqlite-wal").exists()  # closed cleanly: the WAL is folded back
    with MemoryBank.open(path, read_only=True) as bank:
        assert list(bank.facts()) == FACTS == before[0]
        assert bank.ids() == [f["id"] for f in FACTS] and len(bank) == 6 and "f3" in bank and "f9" not in bank
        assert bank.get("f1") == FACTS[0] and bank.position_of("f4") == 3
        stored = bank.vectors()
        assert stored.dtype == np.float16 and stored.shape == (6, DIM) and not stored.flags.writeable
        np.testing.assert_array_equal(stored, vectors.astype(np.float16))
        np.testing.assert_array_equal(stored, before[2])
        positions, scores = bank.search(["shop", "candles"])
        np.testing.assert_array_equal(positions, before[1][0])
        np.testing.assert_array_equal(scores, before[1][1])
        assert (bank.encoder, bank.dim, bank.generation, bank.epoch) == ("enc-1", DIM, 0, 0)
        assert bank.check() == []


def test_a_bank_without_vectors_round_trips(tmp_path):
    with MemoryBank.create(tmp_path / "bank.sqlite", FACTS[:2]) as bank:
        assert bank.dim is None
        with pytest.raises(BankError, match="stores no vectors"):
            bank.vectors()
        with pytest.raises(ValueError, match="this bank stores no vectors"):
            bank.add(fact("x", "one more"), np.ones(DIM))
        bank.add(fact("x", "one more"))
    with MemoryBank.open(tmp_path / "bank.sqlite") as bank:
        assert bank.ids() == ["f1", "f2", "x"] and bank.check() == []


def test_add_and_remove_are_visible_at_once_and_after_reopen(bank):
    position = bank.add(fact("f7", "The garage door code is 4512"), np.full(DIM, 0.5))
    assert position == 6 and bank.get("f7")["text"] == "The garage door code is 4512"
    assert bank.search(["garage"], k=3)[0].tolist() == [6]
    assert bank.remove("f3") == 2
    assert "f3" not in bank and bank.get("f3") is None and len(bank) == 6
    assert bank.search(["birthday", "dana"])[0].tolist() == []
    assert bank.add_many([fact("f8", "The boiler was serviced in May"), fact("f3", "Dana moved to Leeds")],
                         vectors_for(2, seed=1)) == [7, 8]
    path = bank.path
    bank.close()
    with MemoryBank.open(path) as reopened:
        assert reopened.ids() == ["f1", "f2", "f4", "f5", "f6", "f7", "f8", "f3"]
        assert reopened.position_of("f3") == 8  # a re-added id takes a new position; the old one is a tombstone
        tombstone = reopened.row(2)
        assert tombstone.is_removed and tombstone.fact["id"] == "f3" and tombstone.fact["text"] == ""
        assert tombstone.fact["source"] == "brain.db:facts#rowid=1" and tombstone.fact["entity"] is None
        assert reopened.live().tolist() == [True, True, False, True, True, True, True, True, True]
        vectors = reopened.vectors()
        assert vectors.shape == (9, DIM)
        np.testing.assert_array_equal(vectors[6], np.full(DIM, 0.5, dtype=np.float32))
        np.testing.assert_array_equal(vectors[7:], vectors_for(2, seed=1))
        assert reopened.search(["dana"])[0].tolist() == [8]
        assert reopened.generation == 3 and reopened.check() == []
        with pytest.raises(KeyError, match="no fact with id 'f3x'"):
            reopened.remove("f3x")
        assert reopened.generation == 3  # a failed write changes nothing


def test_search_ranks_the_obvious_match_first_and_never_returns_removed(bank):
    positions, scores = bank.search(content_words("What does the shop site sell? candles?"))
    assert positions[0] == 1 and positions.tolist() == [1, 0]
    assert scores.dtype == np.float32 and (scores > 0).all() and scores[0] > scores[1]
    assert bank.search(content_words("when is Dana's birthday"), k=1)[0].tolist() == [2]
    assert bank.search(["café"])[0].tolist() == [5] and bank.search(["cafe"])[0].tolist() == []
    dense = bank.scores(["shop", "candles"])
    positions, scores = bank.search(["shop", "candles"])
    assert dense.shape == (6,) and dense[positions].tolist() == scores.tolist() and dense[2] == 0.0
    bank.remove("f2")
    assert bank.search(["candles"])[0].tolist() == []
    assert bank.search(["shop", "candles"])[0].tolist() == [0]
    assert bank.doc_freq(["shop", "candles", "unknown"]) == {"shop": 1, "candles": 0, "unknown": 0}
    assert "candles" not in bank.vocabulary() and "shopify" in bank.vocabulary()


@pytest.mark.parametrize("words", [['"'], ["*"], ["NEAR"], ["-"], [":"], ['shop"'], ["shop*"], ["-shop"],
                                   ["terms:shop"], ["NEAR(shop", "site)"], ["(", ")", "AND", "OR", "NOT", "^"],
                                   ['" OR "', "shop"], ["\x00shop"], [""], []])
def test_query_syntax_characters_are_plain_words(bank, words):
    positions, scores = bank.search(words, k=10)  # never an FTS5 syntax error
    assert len(positions) == len(scores)
    assert set(positions.tolist()) <= {0, 1}  # only the shop facts hold any of these words


def test_match_expression_quotes_every_word():
    assert match_expression(["shop", 'a"b', "*", "NEAR"]) == '"shop" OR "a""b" OR "NEAR"'
    assert match_expression(["-", ""]) is None
    with pytest.raises(TypeError, match="not a string"):
        match_expression("shop site")


def test_index_terms_are_the_content_words_plus_missing_entity_words():
    assert index_terms({"text": "Dana's birthday is on 3 March", "entity": "Dana Smith"}) == \
        content_words("Dana's birthday is on 3 March") + ["smith"]


def test_replace_all_is_atomic(bank):
    before = list(bank.facts())
    with bank.snapshot() as old_view:
        bank.replace_all([fact("n1", "The new shop opens in June"), fact("n2", "Rent is due on the 1st")],
                         vectors_for(2, seed=3), encoder="enc-2")
        assert old_view.ids() == [f["id"] for f in FACTS]  # a reader mid-way still sees the whole old bank
        assert old_view.vectors().shape == (6, DIM)
    assert bank.ids() == ["n1", "n2"] and bank.epoch == 1 and bank.encoder == "enc-2"
    assert bank.search(["shop"])[0].tolist() == [0] and bank.vectors().shape == (2, DIM)
    assert bank.check() == []
    # A replacement that fails half-way (an unencodable text, met while inserting) leaves the bank as it was.
    bank.replace_all(before, vectors_for(6))
    with pytest.raises(UnicodeEncodeError):
        bank.replace_all([fact("m1", "fine"), fact("m2", "broken \ud800 text")], vectors_for(2))
    assert list(bank.facts()) == before and bank.epoch == 2 and bank.check() == []


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty, not a memory bank"),
    (b"id,text\nf1,hello\n" * 20, "not a SQLite database (the file does not start with the SQLite header)"),
    ("plain-sqlite", "a SQLite database but not a memory bank (no meta table)"),
    ("other-version", "written with bank schema version 99, this dexter-brain reads version 1: rebuild it"),
    ("damaged", "the database is damaged or unreadable (database disk image is malformed)"),
])
def test_open_refuses_what_is_not_a_bank(tmp_path, content, message):
    path = tmp_path / "bank.sqlite"
    if content == "plain-sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE facts (id TEXT, text TEXT)")
        conn.close()
    elif content == "other-version":
        MemoryBank.create(path, FACTS).close()
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
        conn.close()
    elif content == "damaged":
        MemoryBank.create(path, FACTS).close()
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\x00" * 3 + data[103:4096])  # the first page's header overwritten, the rest cut
    else:
        path.write_bytes(content)
    with pytest.raises(BankError) as error:
        MemoryBank.open(path)
    assert str(error.value).startswith(f"memory bank {path}: {message}")
    assert error.value.path == path


def test_missing_and_existing_paths_are_refused(tmp_path):
    with pytest.raises(BankError, match=r"does not exist: make one with MemoryBank\.create"):
        MemoryBank.open(tmp_path / "nope.sqlite")
    MemoryBank.create(tmp_path / "bank.sqlite", FACTS).close()
    with pytest.raises(BankError, match="already exists: open it with MemoryBank.open"):
        MemoryBank.create(tmp_path / "bank.sqlite", FACTS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank.sqlite"]  # no temporary file left behind


@pytest.mark.parametrize("bad, vector, message", [
    ({"text": "no id", "source": "s"}, np.ones(DIM), "fact None: 'id' must be a non-empty string"),
    (fact("f1", "taken"), np.ones(DIM), "a fact with id 'f1' is already in the bank (remove it first)"),
    ({**fact("x", "t"), "colour": "red"}, np.ones(DIM), "fact 'x': unknown field(s) 'colour'; a fact has id, text"),
    ({**fact("x", "t"), "neighbours": "f1"}, np.ones(DIM), "fact 'x': 'neighbours' must be a list of fact ids"),
    ({**fact("x", "t"), "entity": 3}, np.ones(DIM), "fact 'x': 'entity' must be a string or None, got int"),
    (fact("x", "t"), None, "this bank stores a 8-dim vector per fact: pass the vectors"),
    (fact("x", "t"), np.ones(DIM + 1), "vectors have 9 dims, the bank stores 8"),
    (fact("x", "t"), np.full(DIM, np.nan), "vectors hold NaN or infinite values (as float32)"),
])
def test_add_refuses_bad_facts_and_vectors(bank, bad, vector, message):
    with pytest.raises(ValueError) as error:
        bank.add(bad, vector)
    assert str(error.value).startswith(message)
    assert len(bank) == 6 and bank.generation == 0


def test_read_only_bank_refuses_writes(bank):
    with MemoryBank.open(bank.path, read_only=True) as reader:
        with pytest.raises(BankError, match="is open read-only"):
            reader.add(fact("x", "t"), np.ones(DIM))
        bank.add(fact("x", "seen by the reader"), np.ones(DIM))
        assert reader.get("x")["text"] == "seen by the reader" and reader.check() == []
    with pytest.raises(BankError, match="is closed"):
        reader.ids()


def test_vectors_are_read_once_and_earlier_arrays_stay_valid(bank):
    first = bank.vectors()
    bank.add(fact("x", "t"), np.full(DIM, 2.0))
    second = bank.vectors()
    assert first.shape == (6, DIM) and second.shape == (7, DIM)
    np.testing.assert_array_equal(second[:6], first)
    bank.write_vectors(np.zeros((7, 4)), encoder="enc-2")  # a retrained encoder: a new epoch, a new array
    third = bank.vectors()
    assert third.shape == (7, 4) and not third.any() and second[6, 0] == 2.0
    assert (bank.epoch, bank.dim, bank.encoder) == (1, 4, "enc-2") and bank.check() == []


def test_check_finds_an_index_out_of_step_with_the_facts(bank):
    bank.close()
    with sqlite3.connect(bank.path) as conn:
        conn.execute("UPDATE facts SET text = 'edited behind the bank' WHERE id = 'f4'")
        conn.execute("DELETE FROM vectors WHERE position = 5")
    conn.close()
    with MemoryBank.open(bank.path) as reopened:
        problems = reopened.check()
        with pytest.raises(BankError, match="vectors of positions 0-5 are missing or not 8 x float32: the file is"):
            reopened.vectors()
    assert "facts: position 3 is indexed under 'passport expires august 2027', its text gives " \
           "'edited behind bank passport'" in problems
    assert "vectors: 5 stored for 6 positions" in problems


def test_readers_see_a_consistent_bank_while_a_writer_adds(bank):
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        last = -1
        try:
            while not stop.is_set():
                with bank.snapshot() as view:
                    ids, vectors, live = view.ids(), view.vectors(), view.live()
                    positions, _ = view.search(["note"])
                    assert len(ids) == len(view) == int(live.sum())
                    assert vectors.shape == (view.num_positions, DIM) == (len(live), DIM)
                    assert len(positions) == sum(i.startswith("w") for i in ids) and live[positions].all()
                    assert view.generation >= last
                    last = view.generation
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for i in range(60):
        bank.add(fact(f"w{i}", f"note number {i}"), np.full(DIM, float(i)))
        if i % 10 == 9:
            bank.remove(f"w{i - 5}")
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert len(bank) == 6 + 60 - 6 and bank.check() == []


CRASH_WRITER = """
import sys
import numpy as np
from dexter_brain.bank import MemoryBank

bank = MemoryBank.open(sys.argv[1])
rng = np.random.default_rng(0)
i = 0
while True:
    batch = [{"id": f"c{i + j}", "text": f"crash note {i + j} about the garden", "source": "crash"} for j in range(5)]
    if (i // 5) % 2:
        bank.add_many(batch, rng.standard_normal((5, 8)))
        print(*(f["id"] for f in batch), sep="\\n", flush=True)
    else:
        for f in batch:
            bank.add(f, rng.standard_normal(8))
            print(f["id"], flush=True)
    i += 5
"""


def test_a_writer_killed_mid_batch_loses_no_acknowledged_fact(bank):
    bank.close()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(bank.path)], stdout=subprocess.PIPE,
                             env=env, cwd=REPO)
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(acknowledged) < 80 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged.append(line.decode().strip())
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read().decode()  # lines printed before the kill are acknowledged too
    finally:
        child.kill()
        child.wait()
    acknowledged += [line for line in rest.split("\n")[:-1] if line]  # a last line without "\n" is not
    assert child.returncode == -signal.SIGKILL and len(acknowledged) >= 80
    with MemoryBank.open(bank.path) as reopened:
        assert reopened.check() == []  # every row whole, the index in step with the facts, a vector per row
        added = reopened.ids()[6:]
        assert set(acknowledged) <= set(added)
        # Committed but not yet printed when killed: at most the rest of one batch.
        assert added == [f"c{i}" for i in range(len(added))] and len(added) - len(acknowledged) <= 5
        assert reopened.vectors().shape == (6 + len(added), DIM)
        assert reopened.search(["garden"])[0].tolist() == list(range(6, 6 + len(added)))


def test_benchmark_has_help_with_an_example(capsys):
    from benchmarks.bank import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "example: python -m benchmarks.bank --sizes 1000 10000 100000" in capsys.readouterr().out


def test_benchmark_runs_on_a_tiny_bank(travel_raw_dir, tmp_path, capsys):
    from benchmarks.bank import main

    assert main(["--raw", str(travel_raw_dir), "--work-dir", str(tmp_path / "work"), "--sizes", "20", "60",
                 "--dim", "4", "--adds", "3", "--opens", "2", "--searches", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "20 facts: build" in out and "60 facts: build" in out and "ratio 60/20 (3x the facts): open" in out
    with MemoryBank.open(tmp_path / "work" / "bank-60.sqlite") as bank:
        assert len(bank) == 63 and bank.check() == []


def test_facts_may_be_the_miners_fact_rows(tmp_path):
    from dexter_brain.schema import FactRow

    rows = [FactRow(**{**f, "neighbours": tuple(f["neighbours"])}) for f in FACTS]
    with MemoryBank.create(tmp_path / "bank.sqlite", rows) as bank:
        assert list(bank.facts()) == FACTS
