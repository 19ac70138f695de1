"""Tests for dexter_brain.floor: the linear floor fitted by logistic regression under each objective, the
choice among L2 strengths and the baseline feature on validation, and its JSON round trip.

Run: python -m pytest tests/test_floor.py -q
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dexter_brain.floor import FloorData, LinearFloor, Mode, evaluate_scores, fit_floor


def synthetic(n: int, seed: int, *, informative: int = 1, noise: float = 0.3, K: int = 6, F: int = 4,
              strength: float = 2.0):
    """Rows of K candidates whose right one (index in ``target``) has feature ``informative`` raised; feature 0
    is a weak, noisy hint (the "baseline")."""
    g = np.random.default_rng(seed)
    feats = g.normal(size=(n, K, F))
    target = g.integers(K, size=n)
    feats[np.arange(n), target, informative] += strength
    feats[np.arange(n), target, 0] += noise
    labels = np.zeros((n, K))
    labels[np.arange(n), target] = 1
    return feats.astype(np.float32), target, labels


@pytest.mark.parametrize("objective", ["softmax", "listwise", "binary"])
def test_the_fit_finds_the_informative_feature(objective):
    feats, target, labels = synthetic(400, 0)
    vfeats, vtarget, vlabels = synthetic(200, 1)
    mask = np.ones(feats.shape[:2], dtype=bool)

    def data(f, t, lab):
        return FloorData(f, np.ones(f.shape[:2], bool), labels=lab, target=t, top_n=np.ones(len(f), int))

    floor = fit_floor([f"f{i}" for i in range(4)], [Mode([("all", data(feats, target, labels))],
                                                         data(vfeats, vtarget, vlabels), objective, baseline=0)])
    assert floor.info[0]["choice"].startswith("l2")  # the fit beats the weak baseline on validation
    assert int(np.argmax(floor.weight[0])) == 1
    top1 = evaluate_scores(floor.scores(vfeats), FloorData(vfeats, mask[:200], target=vtarget), "softmax")[0]
    assert top1 > 0.7


def test_the_baseline_stays_unless_a_fit_beats_it_on_validation():
    # Feature 0 alone always finds the answer on validation: no fit can be strictly better.
    feats, target, labels = synthetic(300, 2, informative=0, noise=0.0, strength=20.0)
    vfeats, vtarget, _ = synthetic(100, 3, informative=0, noise=0.0, strength=20.0)
    mask = np.ones(feats.shape[:2], bool)
    floor = fit_floor(["a", "b", "c", "d"], [Mode([("all", FloorData(feats, mask, target=target))],
                                                  FloorData(vfeats, mask[:100], target=vtarget), "softmax", 0)])
    assert floor.info[0]["choice"] == "baseline:0"
    # Without validation rows the fit cannot show it does better: the baseline too.
    floor = fit_floor(["a", "b", "c", "d"], [Mode([("all", FloorData(feats, mask, target=target))], None,
                                                  "softmax", 0)])
    assert floor.info[0]["choice"] == "baseline:0"


def test_each_mode_has_its_weights_and_the_json_round_trip_is_exact():
    f1, t1, _ = synthetic(200, 4, informative=1)
    f2, t2, _ = synthetic(200, 5, informative=2)
    m = np.ones(f1.shape[:2], bool)
    floor = fit_floor(list("abcd"), [Mode([("all", FloorData(f1, m, target=t1))], None, "softmax"),
                                     Mode([("all", FloorData(f2, m, target=t2))], None, "softmax")])
    assert floor.num_modes == 2
    assert int(np.argmax(floor.weight[0])) == 1 and int(np.argmax(floor.weight[1])) == 2
    again = LinearFloor.from_json(json.loads(json.dumps(floor.to_json())))
    # Stored to 8 decimals.
    np.testing.assert_allclose(again.scores(f1, 0), floor.scores(f1, 0), atol=1e-6)
    np.testing.assert_allclose(again.scores(f2[:3], np.array([1, 1, 1])), floor.scores(f2[:3], 1), atol=1e-6)


@pytest.mark.parametrize("broken", [{}, {"feature_names": ["a"], "mean": [0, 0], "std": [1], "weight": [[1]],
                                         "bias": [0]}])
def test_a_broken_floor_is_refused(broken):
    with pytest.raises(ValueError, match="not a linear floor"):
        LinearFloor.from_json(broken)
