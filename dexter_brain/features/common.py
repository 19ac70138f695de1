"""What every featurizer shares: the text each TRM reads (with its task markers), token padding, and the
step-matching rule used by both the reasoning labels and the step-F1 metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dexter_brain.lexical import content_set
from dexter_brain.vocab import Vocabulary

# A plan step matches a reference step when the F1 of their content-word sets reaches this.
STEP_MATCH_THRESHOLD = 0.5
NEAR_DUPLICATE = 0.8
"""Two steps this similar (``step_similarity``) say the same thing in other words."""


def memory_query_text(query: str, context: str | None = None) -> str:
    return f"<MEM_QUERY> {query}" + (f" <SEP> {context}" if context else "")


def fact_text(text: str) -> str:
    return f"<MEM_FACT> {text}"


def tool_query_text(task: str, context: str = "", previous_error: str | None = None) -> str:
    text = f"<TOOL_CALL> {task}"
    if context:
        text += f" <SEP> {context}"
    if previous_error:
        text += f" <TOOL_ERROR> {previous_error}"
    return text


def tool_text(name: str, description: str | None) -> str:
    return f"<TOOL_CALL> {name}" + (f" <SEP> {description}" if description else "")


def reasoning_query_text(goal: str, completed: Sequence[str] = (), state: str | None = None,
                         constraints: Sequence[str] = ()) -> str:
    text = f"<REASON_TASK> {goal}"
    if constraints:
        text += " <SEP> " + "; ".join(constraints)
    if state:
        text += f" <SEP> {state}"
    if completed:
        # The most recent steps matter most; the reader keeps the first max_query_len tokens.
        text += " <REASON_PLAN> " + " <REASON_STEP> ".join(reversed(completed[-3:]))
    return text


def step_text(step: str) -> str:
    return f"<REASON_STEP> {step}"


DONE_TEXT = "<REASON_STEP> <REASON_PLAN> done"


def step_similarity(a: str, b: str) -> float:
    """F1 of the two steps' content-word sets (0..1), the matching rule for plan steps."""
    wa, wb = content_set(a), content_set(b)
    if not wa or not wb:
        return float(a.strip().lower() == b.strip().lower())
    shared = len(wa & wb)
    return 2 * shared / (len(wa) + len(wb))


def pad_ids(rows: Sequence[Sequence[int]], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), dtype=np.int32)
    for i, row in enumerate(rows):
        row = list(row)[:length]
        out[i, : len(row)] = row
    return out


@dataclass
class Encoder:
    """Tokenizes texts for one model: queries to ``max_query_len``, candidates to ``max_candidate_len``."""

    vocab: Vocabulary
    max_query_len: int
    max_candidate_len: int

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return pad_ids(self.vocab.encode_batch(list(texts)), self.max_query_len)

    def candidates(self, texts: Sequence[str]) -> np.ndarray:
        return pad_ids(self.vocab.encode_batch(list(texts)), self.max_candidate_len)
