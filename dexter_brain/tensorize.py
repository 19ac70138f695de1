"""The tensors stage of a corpus: every split turned into model inputs by the kind's input builder, and
each kind's linear floor fitted on them.

Reads ``{kind}/{split}.jsonl``, ``{kind}/featurizer.json`` and ``vocab/tokenizer.model``; writes
``tensors/{kind}_{split}.safetensors``, the candidate token bank ``tensors/{kind}_bank.safetensors`` and
``tensors/{kind}_floor.json``. Rows keep the (episode, turn) order of the JSONL files.

Memory rows are made as they are served: each turn's state (its focus and previous query) is what the
conversation's previous answer left. The floor is first fitted with the reference answers as every turn's
focus, the splits are then replayed turn by turn with that floor answering, refitted on what the replay
gave, and replayed once more: the rows written are what the shipped floor itself would serve.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dexter_brain.bank import FACT_FIELDS, MemoryBank
from dexter_brain.features.common import Encoder
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer
from dexter_brain.floor import L2_GRID, LinearFloor, Mode, even_rows, fit_floor
from dexter_brain.inputs import memory as memory_inputs
from dexter_brain.inputs import reasoning as reasoning_inputs
from dexter_brain.inputs import tool as tool_inputs
from dexter_brain.io import read_json, read_rows, write_json, write_safetensors
from dexter_brain.schema import SPLITS, MemoryExample, ReasoningExample, ToolExample

logger = logging.getLogger(__name__)

MAX_FLOOR_ROWS = 3000
"""Training rows a floor is fitted on (an even sample of the split): enough for a few dozen weights."""


def _examples(out: Path, kind: str, row) -> dict[str, list]:
    return {s: [row.model_validate(r) for r in read_rows(out, kind, s)] for s in SPLITS}


def _write(out: Path, kind: str, arrays: dict[str, dict[str, np.ndarray]], bank: np.ndarray,
           floor: LinearFloor) -> dict[Path, str]:
    written = {}
    for split, a in arrays.items():
        path = out / "tensors" / f"{kind}_{split}.safetensors"
        written[path] = write_safetensors(path, a)
    write_safetensors(out / "tensors" / f"{kind}_bank.safetensors", {"ids": bank})
    write_json(out / "tensors" / f"{kind}_floor.json", floor.to_json())
    return written


def tensorize_memory(out: Path, encoder: Encoder) -> dict[Path, str]:
    """Memory rows scored by the FTS5 index of a ``MemoryBank`` made here (``memory/bank.sqlite``) from the
    bank's facts: the same lexical scores the wrappers read from the bank they serve from."""
    state = read_json(out / "memory" / "featurizer.json")
    path = out / "memory" / "bank.sqlite"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    with MemoryBank.create(path, [{k: f.get(k) for k in FACT_FIELDS} for f in state["facts"]]) as bank:
        return _tensorize_memory(out, encoder, MemoryFeaturizer.from_state(state, bank=bank))


def _tensorize_memory(out: Path, encoder: Encoder, featurizer: MemoryFeaturizer) -> dict[Path, str]:
    inputs = memory_inputs.MemoryInputs(featurizer)
    splits = {s: memory_inputs.MemoryTensors(inputs, ex, exclude_own_episode=s == "train")
              for s, ex in _examples(out, "memory", MemoryExample).items() if ex}
    for t in splits.values():
        t.teacher()
    # Replay with a floor, refit on what it served, replay again; the choice among the training variants and L2
    # strengths is made on the last fit only (the earlier ones only need to answer like a fitted floor).
    for choose in (False, False, True):
        floor = _fit_memory_floor(splits, choose=choose)
        for t in splits.values():
            t.replay(floor)
    arrays = {s: t.arrays(encoder) for s, t in splits.items()}
    return _write(out, "memory", arrays, inputs.bank_ids(encoder), floor)


def _fit_memory_floor(splits: dict, choose: bool) -> LinearFloor:
    """The memory floor; ``choose``: among the training variants (with and without the generated examples),
    the L2 strengths and BM25 alone on validation, else one fit on every row at the middle L2 strength."""
    train = splits["train"]
    every = train.floor_rows()
    trains = [("all", train.floor_data(every, max_rows=MAX_FLOOR_ROWS))]
    if not choose:
        return fit_floor(memory_inputs.CANDIDATE_FEATURES,
                         [Mode(trains, None, "listwise", None)], l2_grid=(L2_GRID[len(L2_GRID) // 2],))
    # Compared before the sample is taken: both capped at MAX_FLOOR_ROWS, the two would look alike.
    real = train.floor_rows(real_only=True)
    if 0 < len(real) < len(every):
        trains.append(("real", train.floor_data(real, max_rows=MAX_FLOOR_ROWS)))
    val = splits["val"].floor_data() if "val" in splits else None
    return fit_floor(memory_inputs.CANDIDATE_FEATURES,
                     [Mode(trains, val, "listwise", memory_inputs.BASELINE_FEATURE)])


def tensorize_tool(out: Path, encoder: Encoder, reserved: tuple[str, ...]) -> dict[Path, str]:
    featurizer = ToolFeaturizer.from_state(read_json(out / "tool" / "featurizer.json"))
    inputs = tool_inputs.ToolInputs(featurizer)
    splits = {s: tool_inputs.ToolTensors(inputs, ex, training=s == "train")
              for s, ex in _examples(out, "tool", ToolExample).items() if ex}
    val = splits["val"].floor_data() if "val" in splits else None
    floor = fit_floor(tool_inputs.CANDIDATE_FEATURES,
                      [Mode([("all", _even(splits["train"].floor_data()))], val, "softmax",
                            tool_inputs.BASELINE_FEATURE)])
    arrays = {s: t.arrays(encoder, reserved) for s, t in splits.items()}
    return _write(out, "tool", arrays, inputs.tool_ids(encoder, featurizer.names), floor)


def tensorize_reasoning(out: Path, encoder: Encoder) -> dict[Path, str]:
    featurizer = ReasoningFeaturizer.from_state(read_json(out / "reasoning" / "featurizer.json"))
    inputs = reasoning_inputs.ReasoningInputs(featurizer)
    splits = {s: reasoning_inputs.ReasoningTensors(inputs, ex, training=s == "train")
              for s, ex in _examples(out, "reasoning", ReasoningExample).items() if ex}
    val = splits.get("val")
    modes = [Mode([("all", _even(splits["train"].floor_data("plan")))], val.floor_data("plan") if val else None,
                  "binary", reasoning_inputs.BASELINE_FEATURES["plan"], val.plan_metric() if val else None),
             Mode([("all", _even(splits["train"].floor_data("next")))], val.floor_data("next") if val else None,
                  "softmax", reasoning_inputs.BASELINE_FEATURES["next"])]
    floor = fit_floor(reasoning_inputs.CANDIDATE_FEATURES, modes)
    texts: dict[str, int] = {}
    arrays = {s: t.arrays(encoder, texts) for s, t in splits.items()}
    bank = encoder.candidates(reasoning_inputs.ReasoningInputs.candidate_texts(list(texts)))
    return _write(out, "reasoning", arrays, bank, floor)


def _even(data, max_rows: int = MAX_FLOOR_ROWS):
    """At most ``max_rows`` rows of ``data``, evenly spread."""
    return data if len(data) <= max_rows else data.subset(even_rows(len(data), max_rows))
