"""Tests for dexter_brain.lexical: normalisation, word splitting (camelCase, dotted and snake_case names), the
growable BM25 index and the spelling index.

Run: python -m pytest tests/test_lexical.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from dexter_brain.lexical import (
    LexicalIndex, SpellingIndex, content_set, content_words, jaccard, normalize, trigrams, words,
)


@pytest.mark.parametrize("text, expected", [
    ("Hello,   World!", "hello world"),
    ("  Book the TP-202 flight  ", "book the tp 202 flight"),
    ("ﬁne_tuning", "fine tuning"),  # NFKC ligature, underscore splits
    ("Straße", "strasse"),  # casefold
    ("Café ☕ 12:30", "café 12 30"),
    ("", ""),
    ("...", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("file_system.listDir", ["file", "system", "list", "dir"]),
    ("flights.search", ["flights", "search"]),
    ("calendar.addEvent", ["calendar", "add", "event"]),
    ("HTTPServer getURLPath", ["http", "server", "get", "url", "path"]),
    ("SkyMiles", ["sky", "miles"]),
    ("UPPER case", ["upper", "case"]),
    ("car_rental.reserve v2", ["car", "rental", "reserve", "v2"]),
    ("Ünïcode Wörds", ["ünïcode", "wörds"]),
])
def test_words_split_identifiers(text, expected):
    assert words(text) == expected


def test_content_words_drop_stop_words_but_keep_follow_up_cues():
    assert content_words("What is the status of my flight?") == ["status", "flight"]
    assert content_words("and the other one?") == ["other", "one"]
    assert content_set("the flight and the flight") == frozenset({"flight"})


def test_trigrams_and_jaccard():
    assert trigrams("cat") == {"#ca", "cat", "at#"}
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
    assert jaccard(set(), {1}) == 0.0


DOCS = [["flight", "lisbon"], ["hotel", "lisbon"], ["hotel", "kyoto", "ryokan"]]


def test_lexical_index_ranks_by_bm25_with_deterministic_ties():
    index = LexicalIndex(DOCS)
    ids, scores = index.top_k(["hotel", "lisbon"], 5)
    assert ids.tolist() == [1, 0, 2]
    assert np.all(np.diff(scores) <= 0)
    tied = LexicalIndex([["a", "b"], ["a", "c"], ["c", "d"]])
    assert tied.top_k(["a"], 5)[0].tolist() == [0, 1]  # equal scores: lower index first
    assert index.top_k(["unknown"], 3)[0].tolist() == []
    assert index.scores(["unknown"]).tolist() == [0.0, 0.0, 0.0]


def test_lexical_index_add_and_remove():
    index = LexicalIndex(DOCS)
    assert index.idf("kyoto") > index.idf("hotel") > 0
    new = index.add(["flight", "osaka"])
    assert new == 3 and len(index) == 4
    assert index.top_k(["osaka"], 2)[0].tolist() == [3]
    index.remove(1)
    assert index.scores(["hotel"])[1] == 0.0
    assert index.top_k(["lisbon"], 5)[0].tolist() == [0]  # removed documents never rank
    assert len(index) == 4  # positions stay stable
    index.remove(3)
    assert not index.known("osaka") and index.known("kyoto")


def test_empty_and_emptied_index_score_nothing():
    index = LexicalIndex()
    assert index.scores(["a"]).shape == (0,)
    assert index.top_k(["a"], 3)[0].shape == (0,)
    assert not index.known("a")
    first = index.add(["a"])
    assert index.top_k(["a"], 3)[0].tolist() == [first]
    index.remove(first)
    assert index.scores(["a"]).tolist() == [0.0]
    assert LexicalIndex([[], []]).scores(["a"]).tolist() == [0.0, 0.0]


VOCABULARY = ["lisbon", "flight", "hotel", "booking", "confirmation", "kyoto"]


@pytest.mark.parametrize("word, expected", [
    ("hotell", "hotel"),
    ("confirmaton", "confirmation"),
    ("hotel", None),  # known
    ("kyt", None),  # shorter than min_length
    ("2027", None),  # numbers are never corrected
    ("zzzzzz", None),  # nothing close
])
def test_spelling_index_correct(word, expected):
    assert SpellingIndex(VOCABULARY).correct(word) == expected


def test_spelling_index_expand_and_add():
    spelling = SpellingIndex(VOCABULARY)
    assert spelling.expand(["book", "hotell", "confirmaton"]) == (["book", "hotel", "confirmation"], 2)
    assert spelling.correct("ryokann") is None
    spelling.add("ryokan")
    assert spelling.correct("ryokann") == "ryokan"


@pytest.mark.parametrize("seed", range(5))
def test_top_k_is_score_then_index_order_even_at_the_cut(seed):
    rng = np.random.default_rng(seed)
    for _ in range(50):
        scores = rng.integers(0, 4, int(rng.integers(1, 120))).astype(np.float32)  # many ties
        k = int(rng.integers(1, 15))
        ids, top = LexicalIndex().top_k([], k, scores=scores)
        expected = sorted(np.flatnonzero(scores > 0).tolist(), key=lambda i: (-scores[i], i))[:k]
        assert ids.tolist() == expected and top.tolist() == scores[expected].tolist()
