"""The rows of the three corpora and the settings of a generation run.

Every example names its ``episode`` (the conversation or plan it belongs to, in ``turn`` order), the
``group`` that decides its split, and the ``source`` it was mined from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    episode: str
    """Conversation (or plan) the example belongs to; turns of one episode are trained with carry."""
    turn: int
    """Position inside the episode, from 0."""
    group: str
    """Split key: examples sharing a group always land in the same split."""
    difficulty: int = Field(ge=0, le=2)
    """0 easy, 1 moderate, 2 hard; drives the training curriculum."""
    source: str
    """Provenance of the raw record the example came from."""
    split: Split = "train"
    scored: bool = True
    """False for a val/test example whose text already appears in an earlier split: it still runs (its
    turn builds the conversation's carry) but is left out of every metric."""


class FactRow(BaseModel):
    """One entry of the memory bank."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    source: str
    entity: str | None = None
    topic: str | None = None
    created_at: str | None = None
    neighbours: tuple[str, ...] = ()
    """Facts stored next to this one (same source conversation, adjacent messages)."""


class MemoryExample(_Row):
    query: str
    positives: tuple[str, ...]
    """Ids of the facts that answer the query; empty when nothing stored is relevant."""
    context: tuple[str, ...] = ()
    """The previous turns of the conversation, oldest first (``role: text``)."""
    is_followup: bool = False
    """The answer depends on earlier turns: the query does not name what its positives are about."""
    origin: Literal["memory_refs", "inherited", "no_refs", "provenance", "triple", "pseudo"]


class ToolEntry(BaseModel):
    """One tool of the catalogue, with what the logs say about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str | None = None
    calls: int = 0
    successes: int = 0
    errors: int = 0


class ToolExample(_Row):
    task: str
    available: tuple[str, ...]
    """Tool names offered for this call; the whole catalogue when the log did not say."""
    context: str = ""
    """The UI context flattened to text."""
    previous_tool: str | None = None
    """Tool called just before in the same conversation, when that call failed."""
    previous_error: str | None = None
    tool: str
    status: Literal["success", "error"]
    error: str | None = None
    is_correction: bool = False
    """A successful call that retried a failed one with another tool."""


COMPLEXITY_LEVELS = ("simple", "moderate", "complex")


def complexity_of(num_steps: int) -> str:
    """A plan's complexity from its length: simple 1-3 steps (or none); moderate 4-6; complex 7 or more."""
    return "simple" if num_steps <= 3 else "moderate" if num_steps <= 6 else "complex"


class ReasoningExample(_Row):
    kind: Literal["plan", "next"]
    goal: str
    state: str | None = None
    constraints: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    """The whole plan (kind ``plan``)."""
    completed: tuple[str, ...] = ()
    """Steps already done (kind ``next``)."""
    next_step: str | None = None
    """The step after ``completed``; None means the plan is done (kind ``next``)."""
    complexity: Literal["simple", "moderate", "complex"]
    plan_id: str


EXAMPLES: dict[str, type[_Row]] = {"memory": MemoryExample, "tool": ToolExample, "reasoning": ReasoningExample}
"""The row model of each corpus kind."""


class CorpusSettings(BaseModel):
    """Choices of one corpus generation run (saved in the manifest)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    seed: int = 0
    """Salt of the split hash and of generated questions."""
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    """Train / validation / test shares of the split groups."""
    reserved_tool_fraction: float = 0.1
    """Share of tools (by a hash of their names) whose logged history is hidden when the unseen-tool figure
    is measured; they stay in training: the model a user gets knows every tool."""
    vocab_size: int = 8000
    """Requested vocabulary size; shrinks for small corpora."""
    pseudo_queries_per_fact: int = 1
    """Questions generated from each fact's own words (inverse cloze), train split only."""
    max_context_turns: int = 4
    """Previous turns kept as an example's context."""
