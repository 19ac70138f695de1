"""``ToolInputs``: the one path from (task, available tools, context, what just failed) to the tool TRM's inputs.

The candidates are the available tools; a catalogue larger than ``MAX_CANDIDATES`` is first shortlisted by
its text (BM25 over name and description, plus loose word matches) and by the tools the logs used for the
most similar tasks, so an app can pass thousands of tools. The corpus build (``ToolTensors``) and
``ToolTRM`` both call ``ToolInputs.rows``; only a training row may force its logged tool into the
shortlist (``teacher_forcing``), so that every training row has an answer to learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.features import tool as tool_features
from dexter_brain.features.common import Encoder, tool_query_text, tool_text
from dexter_brain.features.tool import TaskView, ToolFeaturizer, _bm25_of, _prefixes
from dexter_brain.inputs.common import episode_columns
from dexter_brain.io import stable_fraction
from dexter_brain.schema import ToolExample

CANDIDATE_FEATURES = tool_features.CANDIDATE_FEATURES
QUERY_FEATURES = tool_features.QUERY_FEATURES
HISTORY_FEATURES = tool_features.HISTORY_FEATURES
BASELINE_FEATURE = CANDIDATE_FEATURES.index("bm25_log")
"""The floor that needs no labels: BM25 of the task against each tool's name and description."""
MAX_CANDIDATES = 64
"""Tools scored per call; a longer list is shortlisted to this many."""
SHORTLIST_BY_HISTORY = 16
"""Of the shortlist, at most this many come from the tools used for the nearest logged tasks."""
UNSEEN_FOLDS = 5
"""Tools fall into this many folds by a hash of their name. In one training row in UNSEEN_FOLDS, the tools of
the right tool's fold are shown without history, as tools never logged: the floor and the model learn to
rank a tool by its name and description when nothing was logged for it, without learning that "no
history" itself marks the answer (a fifth of the candidates look the same)."""


@dataclass
class ToolRow:
    """One call's inputs: the candidate tool names and their (K, F) features."""

    view: TaskView
    candidates: list[str]
    feats: np.ndarray
    query_feats: np.ndarray


class ToolInputs:
    """Candidates and features of tool calls over one ``ToolFeaturizer`` (catalogue + logged calls)."""

    def __init__(self, featurizer: ToolFeaturizer):
        self.featurizer = featurizer

    def shortlist(self, view: TaskView, available: Sequence[str], keep: Sequence[str] = ()) -> list[str]:
        """``available`` itself when short enough; otherwise the tools the logs used for the nearest tasks,
        the failed tool and ``keep``, then the best by text, in the order given (at most MAX_CANDIDATES)."""
        if len(available) <= MAX_CANDIDATES:
            return list(available)
        offered = set(available)
        chosen = [t for t in dict.fromkeys(keep) if t in offered]
        for tool, _ in view.neighbours:
            if len(chosen) >= SHORTLIST_BY_HISTORY:
                break
            if tool in offered and tool not in chosen:
                chosen.append(tool)
        fz = self.featurizer
        tools = [fz._tool(n) for n in available]
        text = _bm25_of(view.tokens, tools, fz.tool_index).astype(np.float64)
        if text.max(initial=0.0) > 0:
            text /= text.max()
        q = set(_prefixes(view.token_set))
        text += [len(q & t.name_prefixes) / max(len(t.name_prefixes), 1) for t in tools]
        order = np.argsort(-text, kind="stable")
        for i in order.tolist():
            if len(chosen) >= MAX_CANDIDATES:
                break
            if available[i] not in chosen:
                chosen.append(available[i])
        return sorted(chosen, key={t: i for i, t in enumerate(available)}.__getitem__)

    def rows(self, tasks: Sequence[str], available: Sequence[Sequence[str]], contexts: Sequence[str],
             previous_tools: Sequence[str | None], previous_errors: Sequence[str | None],
             exclude_episodes: Sequence[str | None] | None = None,
             keep: Sequence[Sequence[str]] | None = None,
             hidden: Sequence[frozenset[str]] | None = None) -> list[ToolRow]:
        """The inputs of several calls. ``exclude_episodes``: a training row's own conversation, left out of
        the history features; ``keep``: tools forced into a shortlist (teacher forcing, training only);
        ``hidden``: tools shown as never logged (training rows, and the unseen-tool measurement)."""
        fz = self.featurizer
        n = len(tasks)
        exclude_episodes = exclude_episodes if exclude_episodes is not None else [None] * n
        keep = keep if keep is not None else [()] * n
        hidden = hidden if hidden is not None else [frozenset()] * n
        out = []
        for task, avail, ctx, prev, err, episode, forced, unseen in zip(
                tasks, available, contexts, previous_tools, previous_errors, exclude_episodes, keep, hidden):
            view = fz.view(task, ctx, exclude_episode=episode)
            cands = self.shortlist(view, avail, [*forced, *([prev] if prev else [])])
            feats = fz.features(view, cands, prev, err, exclude_episode=episode, hidden=unseen)
            out.append(ToolRow(view=view, candidates=cands, feats=feats,
                               query_feats=fz.query_features(view, avail, err)))
        return out

    @staticmethod
    def query_ids(encoder: Encoder, tasks: Sequence[str], contexts: Sequence[str],
                  errors: Sequence[str | None]) -> np.ndarray:
        return encoder.queries([tool_query_text(t, c, e) for t, c, e in zip(tasks, contexts, errors)])

    def tool_ids(self, encoder: Encoder, names: Sequence[str]) -> np.ndarray:
        return encoder.candidates([tool_text(n, self.featurizer.describe(n)) for n in names])


def _fold(name: str) -> int:
    return int(stable_fraction("fold", name) * UNSEEN_FOLDS)


def _fold_of(tool: str, available: Sequence[str]) -> frozenset[str]:
    """The available tools in the same fold as ``tool`` (``tool`` included)."""
    fold = _fold(tool)
    return frozenset(t for t in (*available, tool) if _fold(t) == fold)


class ToolTensors:
    """The rows of one tool split (examples in episode and turn order) and their arrays."""

    def __init__(self, inputs: ToolInputs, examples: Sequence[ToolExample], *, training: bool,
                 unseen: Sequence[str] = ()):
        """``training``: history without the row's own conversation, the logged tool forced into a shortlist
        and one row in UNSEEN_FOLDS with its tool's fold shown as never logged; ``unseen``: tools shown as
        never logged in every row (the unseen-tool measurement)."""
        self.inputs, self.examples = inputs, list(examples)
        ex = self.examples
        if training:
            hidden = [_fold_of(e.tool, e.available) if stable_fraction("unseen", e.id) < 1 / UNSEEN_FOLDS
                      else frozenset() for e in ex]
        else:
            hidden = [frozenset(unseen)] * len(ex)
        self.rows = inputs.rows([e.task for e in ex], [list(e.available) for e in ex], [e.context for e in ex],
                                [e.previous_tool for e in ex], [e.previous_error for e in ex],
                                exclude_episodes=[e.episode if training else None for e in ex],
                                keep=[(e.tool,) if training else () for e in ex], hidden=hidden)

    def _padded(self) -> dict[str, np.ndarray]:
        pos = self.inputs.featurizer.tool_pos
        n = len(self.rows)
        K, F = max([len(r.candidates) for r in self.rows] + [1]), len(CANDIDATE_FEATURES)
        out = {"cand_index": np.full((n, K), -1, dtype=np.int32), "cand_feats": np.zeros((n, K, F), np.float32),
               "target": np.full(n, -1, dtype=np.int64),
               "query_feats": np.zeros((n, len(QUERY_FEATURES)), np.float32)}
        for k, (row, ex) in enumerate(zip(self.rows, self.examples)):
            c = len(row.candidates)
            out["cand_index"][k, :c] = [pos[t] for t in row.candidates]
            out["cand_feats"][k, :c] = row.feats
            if ex.tool in row.candidates:
                out["target"][k] = row.candidates.index(ex.tool)
            out["query_feats"][k] = row.query_feats
        return out

    def floor_data(self):
        """``FloorData`` (softmax) of the successful calls whose tool is among the candidates."""
        from dexter_brain.floor import FloorData

        arrays = self._padded()
        target = arrays["target"].copy()
        target[[e.status != "success" or not e.scored for e in self.examples]] = -1
        return FloorData(arrays["cand_feats"], arrays["cand_index"] >= 0, target=target)

    def arrays(self, encoder: Encoder, reserved: Sequence[str] = ()) -> dict[str, np.ndarray]:
        ex, reserved = self.examples, set(reserved)
        return {
            **self._padded(),
            "query_ids": ToolInputs.query_ids(encoder, [e.task for e in ex], [e.context for e in ex],
                                              [e.previous_error for e in ex]),
            "mode": np.zeros(len(ex), dtype=np.int64),
            "failed": np.array([e.status == "error" for e in ex], dtype=np.int32),
            "is_correction": np.array([e.is_correction for e in ex], dtype=np.int32),
            "reserved": np.array([e.tool in reserved for e in ex], dtype=np.int32),
            "history_columns": np.array([CANDIDATE_FEATURES.index(c) for c in HISTORY_FEATURES], dtype=np.int32),
            **episode_columns(ex),
        }
