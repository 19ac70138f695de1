"""Request and response bodies of the HTTP API, as pydantic models: the same keys as the Python API.

Requests reject unknown keys and wrong types (strict mode: ``"5"`` is not a ``k``), so a typo such as
``conversationId`` gets a 422 that names the field instead of being ignored. Every size is bounded: texts
by the wrappers' own limit, ``k``, tool lists and step lists by theirs. Responses allow extra keys, so a key
a wrapper adds later reaches clients without a change here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dexter_brain.wrappers.common import MAX_TEXT_CHARS
from dexter_brain.wrappers.memory import MAX_K
from dexter_brain.wrappers.reasoning import MAX_STEPS_IN
from dexter_brain.wrappers.tool import MAX_TOOLS

CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9._:@~-]{1,128}$"
"""Opaque to the server: letters, digits and ``._:@~-``, 1-128 characters (safe in a URL path and a log)."""
MAX_MEMORY_ID_CHARS = 256
MAX_TOOL_NAME_CHARS = 200

ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
OptionalText = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
ShortText = Annotated[str, StringConstraints(max_length=MAX_MEMORY_ID_CHARS)]
ToolName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TOOL_NAME_CHARS)]
MemoryId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_MEMORY_ID_CHARS)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)


# --- requests ------------------------------------------------------------------------------------------------
class ToolSpec(_Request):
    """A tool the app offers, with an optional description (an unseen tool is ranked by its words)."""

    name: ToolName
    """The tool's name, e.g. ``calendar.list_events``."""
    description: OptionalText | None = None
    """What the tool does, in words."""


ToolList = Annotated[list[ToolName | ToolSpec], Field(min_length=1, max_length=MAX_TOOLS)]


class RetrieveRequest(_Request):
    query: Text
    """What the user asked."""
    k: int = Field(default=5, ge=1, le=MAX_K)
    """How many memories to return."""
    conversation_id: ConversationId = "default"
    """Whose carry to start from and update."""
    context: OptionalText | None = None
    """Extra text for the lexical search (e.g. the app's current screen)."""


class SelectToolRequest(_Request):
    task: Text
    """What the user wants done."""
    available_tools: ToolList | None = None
    """Tool names or ``{name, description}`` objects; null means the whole catalogue."""
    context: dict[str, Any] | OptionalText | None = None
    """The app's UI context, an object or text."""
    previous_error: OptionalText | None = None
    """The error of the tool call that just failed in this conversation, if any."""
    conversation_id: ConversationId = "default"
    """Whose carry to start from and update."""
    failed_tool: ToolName | None = None
    """The tool whose call failed, when the app knows it (otherwise the carry's last tool is assumed)."""


class PlanRequest(_Request):
    goal: Text
    """What to achieve."""
    state: OptionalText | None = None
    """Where things stand now."""
    constraints: Annotated[list[Text], Field(max_length=MAX_STEPS_IN)] | None = None
    """Constraints to respect, one text each."""
    conversation_id: ConversationId = "default"
    """Whose carry to start from and update."""


class NextStepRequest(_Request):
    goal: Text
    """What to achieve."""
    completed: Annotated[list[Text], Field(max_length=MAX_STEPS_IN)] | None = None
    """The steps done so far, in order."""
    conversation_id: ConversationId = "default"
    """Whose carry to start from and update."""


class TurnRequest(_Request):
    text: Text
    """The user's message."""
    conversation_id: ConversationId = "default"
    """Whose carries to start from and update."""
    available_tools: ToolList | None = None
    """Tool names or ``{name, description}`` objects; null means the whole catalogue."""
    context: dict[str, Any] | OptionalText | None = None
    """The app's UI context, an object or text."""
    previous_error: OptionalText | None = None
    """The error of the tool call that just failed in this conversation, if any."""


class AddMemoryRequest(_Request):
    text: Text
    """The fact to store; retrievable by the next call."""
    id: Annotated[str, StringConstraints(pattern=CONVERSATION_ID_PATTERN)] | None = None
    """Its id (letters, digits and ``._:@~-``); derived from the text when omitted."""
    entity: ShortText | None = None
    """What the fact is about; guessed from the text when omitted."""
    topic: ShortText | None = None
    """A topic label."""
    source: ShortText | None = None
    """Where the fact came from (shown with each retrieved memory)."""
    created_at: ShortText | None = None
    """When it was stated (ISO 8601); now when omitted."""


class FeedbackRequest(_Request):
    """How the conversation's last turn went (``UnifiedConsciousness.feedback``); give at least one part."""

    conversation_id: ConversationId
    """The conversation whose last turn (``/v1/turn``; for memories, its last retrieve) the feedback is about."""
    used: Annotated[list[MemoryId], Field(max_length=MAX_K)] | None = None
    """Ids of the memories the user relied on (``[]``: none helped)."""
    rejected: Annotated[list[MemoryId], Field(max_length=MAX_K)] | None = None
    """Ids of memories shown but turned down."""
    tool_status: Literal["success", "error"] | None = None
    """How the call of the turn's tool went."""
    tool_error: OptionalText | None = None
    """The error text when ``tool_status`` is ``error``."""
    tool: ToolName | None = None
    """The tool actually called, when the app called another than the one selected."""
    plan_success: bool | None = None
    """Whether the turn's plan worked."""
    plan_steps: Annotated[list[Text], Field(min_length=1, max_length=MAX_STEPS_IN)] | None = None
    """The steps actually carried out, when they differ from the plan returned."""


# --- responses -----------------------------------------------------------------------------------------------
class Memory(_Response):
    id: str
    text: str
    score: float
    """Probability share among the candidates."""
    source: str
    """Where the fact came from (file and line, table and row, or ``add_memory``)."""


class RetrieveResponse(_Response):
    memories: list[Memory]
    """Best first."""
    confidence: float
    """Calibrated probability that the first memory is relevant."""
    abstain: bool
    """True when nothing stored looks relevant."""
    steps: int
    """Recursion steps used."""


class SelectToolResponse(_Response):
    selected_tool: str
    confidence: float
    abstain: bool
    ranking: list[tuple[str, float]]
    """``[tool, probability]`` pairs, best first."""
    predicted_error: bool
    error_probability: float
    steps: int


class PlanResponse(_Response):
    plan_steps: list[str]
    complexity: str
    """simple, moderate or complex."""
    confidence: float
    steps: int
    candidates: list[tuple[str, float]]
    """Every candidate step with its probability of belonging to the plan, best first."""


class NextStepResponse(_Response):
    next_step: str | None
    """Null when the plan is done."""
    done: bool
    confidence: float
    steps: int
    ranking: list[tuple[str | None, float]]
    """``[step, probability]`` pairs, best first; null stands for "done"."""


class TurnResponse(_Response):
    memories: list[Memory]
    """The retrieved memories (empty when memory abstains or is absent)."""
    memory: RetrieveResponse | None
    tool: SelectToolResponse | None
    fast_path: bool
    """True when the tool was confident enough to skip planning."""
    tool_result: Any = None
    tool_error: str | None = None
    plan: PlanResponse | None
    context: dict[str, Any]
    """The assembled context, with its ``prompt`` rendering, for your LLM."""
    response: str | None = None
    timings_ms: dict[str, float]


class AddMemoryResponse(_Response):
    id: str
    """The stored fact's id."""


class ResetResponse(_Response):
    conversation_id: str
    reset: bool


class FeedbackResponse(_Response):
    conversation_id: str
    memory: dict[str, Any] | None
    """What was recorded of the memories (``query``, ``used``, ``rejected``), or null."""
    tool: dict[str, Any] | None
    """The tool call as logged, or null."""
    plan: dict[str, Any] | None
    """The plan's outcome (``pattern_id``, ``goal``, ``steps``, ``success``), or null."""
