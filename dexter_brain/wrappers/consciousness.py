"""``UnifiedConsciousness``: the three TRMs composed into one turn of an assistant.

A turn retrieves the conversation's memories, selects a tool, and either takes the fast path (the tool is
confident enough: hand it to the optional tool executor) or asks the reasoning TRM for a plan (also when the
executor fails). Everything is assembled into a context (a dict plus a ``prompt`` rendering) for an optional
LLM client. Each part is optional: a brain without a reasoning checkpoint still retrieves and selects tools.
The wrappers' calls run in worker threads, so a host's event loop is never blocked by a model call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dexter_brain.checkpoint import CheckpointError
from dexter_brain.config import InferConfig
from dexter_brain.corpora.tool import flatten_context
from dexter_brain.wrappers.common import FEEDBACK_DIR, validate_conversation_id, validate_text
from dexter_brain.wrappers.memory import MemoryTRM
from dexter_brain.wrappers.reasoning import ReasoningTRM
from dexter_brain.wrappers.tool import ToolTRM, normalize_tools

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
MAX_REMEMBERED_TURNS = 10_000
"""Conversations whose last turn ``feedback`` can still refer to (the least recently active are forgotten)."""
CLASSES = {"memory": MemoryTRM, "tool": ToolTRM, "reasoning": ReasoningTRM}
OPERATIONS = {
    "memory": ["retrieve", "retrieve_many", "add_memory", "remove_memory", "refresh_from"],
    "tool": ["select_tool", "select_tool_many"],
    "reasoning": ["plan", "next_step"],
}
FEEDBACK_OPERATIONS = {"memory": "feedback", "tool": "record_outcome", "reasoning": "record_outcome"}


@runtime_checkable
class LLMClient(Protocol):
    """Anything that answers an assembled context (``context["prompt"]`` is a ready-made text rendering)."""

    async def chat(self, context: dict) -> str: ...


@runtime_checkable
class ToolExecutor(Protocol):
    """Runs the tool chosen on the fast path; whatever it returns is put into the context as the result."""

    async def __call__(self, tool: str, text: str, context: dict) -> Any: ...


def carry_file(directory: Path, kind: str) -> Path:
    """Where ``save_carries`` writes, and ``load_carries`` reads, the carries of one TRM."""
    return directory / f"{kind}.carry.safetensors"


class UnifiedConsciousness:
    """Memory, tool selection and planning composed for a host app, each with its per-conversation carry.

    Args:
        memory: A ``MemoryTRM`` or None.
        tool: A ``ToolTRM`` or None.
        reasoning: A ``ReasoningTRM`` or None.
        llm: An ``LLMClient``; without one, ``process_input`` returns the assembled context and no response.
        tool_executor: A ``ToolExecutor`` called on the fast path.
        fast_path_threshold: The tool confidence (0-1) at or above which the tool is used without a plan.
        memory_k: How many memories each turn retrieves.

    Example:
        >>> brain = UnifiedConsciousness.from_dir("models")
        >>> turn = brain.process("What website projects do I have?", conversation_id="c1")
        >>> turn["context"]["prompt"]
    """

    def __init__(self, memory: MemoryTRM | None = None, tool: ToolTRM | None = None,
                 reasoning: ReasoningTRM | None = None, *, llm: LLMClient | None = None,
                 tool_executor: ToolExecutor | None = None, fast_path_threshold: float = 0.8, memory_k: int = 5):
        parts = {"memory": memory, "tool": tool, "reasoning": reasoning}
        for kind, part in parts.items():
            if part is not None and not isinstance(part, CLASSES[kind]):
                raise TypeError(f"{kind} must be a {CLASSES[kind].__name__} or None, got {type(part).__name__}")
        if all(p is None for p in parts.values()):
            raise ValueError("UnifiedConsciousness needs at least one of memory, tool or reasoning")
        if llm is not None and not isinstance(llm, LLMClient):
            raise TypeError(f"llm must have an async chat(context) method, got {type(llm).__name__}")
        if tool_executor is not None and not callable(tool_executor):
            raise TypeError(f"tool_executor must be an async callable, got {type(tool_executor).__name__}")
        if not 0.0 <= fast_path_threshold <= 1.0:
            raise ValueError(f"fast_path_threshold must be between 0 and 1, got {fast_path_threshold!r}")
        if not isinstance(memory_k, int) or memory_k < 1:
            raise ValueError(f"memory_k must be a positive integer, got {memory_k!r}")
        self.memory, self.tool, self.reasoning = memory, tool, reasoning
        self.llm, self.tool_executor = llm, tool_executor
        self.fast_path_threshold, self.memory_k = fast_path_threshold, memory_k
        self.missing: dict[str, str] = {k: "not given" for k, p in parts.items() if p is None}
        self._turns: OrderedDict[str, dict] = OrderedDict()  # conversation -> its last turn, for ``feedback``
        self._turns_lock = threading.Lock()

    @classmethod
    def from_dir(cls, models_dir: str | Path, use_carry: bool = True, device: str = "auto", *,
                 infer_config: InferConfig | None = None, carry_dir: str | Path | None = None,
                 backend: str = "torch", feedback_dir: str | Path | None = None,
                 **kwargs) -> "UnifiedConsciousness":
        """Load ``models_dir/memory``, ``models_dir/tool`` and ``models_dir/reasoning``; a missing one is left
        out (``health()`` says so), a broken one is an error. ``backend`` (``torch``, ``onnx``, ``onnx-int8``)
        is how each runs (see ``MemoryTRM.from_checkpoint``).

        Args:
            models_dir: The directory the build wrote.
            use_carry: Keep a carry per conversation.
            device: ``cpu``, ``cuda`` or ``auto``.
            infer_config: How the three are run, including the carry limits (``carry_max_in_memory``,
                ``carry_max_conversations``, ``carry_max_age_seconds``); None: the defaults.
            carry_dir: Spill carries beyond ``carry_max_in_memory`` to ``<carry_dir>/<kind>.carry.sqlite``
                (one file per TRM) instead of dropping them.
            feedback_dir: Where ``feedback`` (and each TRM's feedback call) appends; default
                ``<models_dir>/feedback``, created on the first feedback. Never the app's raw directory.
            **kwargs: Passed to the constructor (``llm``, ``tool_executor``, ``fast_path_threshold``, ...).

        Raises:
            CheckpointError: ``models_dir`` is missing, holds none of the three, or one of them is broken.
            ValueError: ``infer_config.carry_path`` is set: three TRMs cannot share one spill file.
        """
        models_dir = Path(models_dir)
        if not models_dir.is_dir():
            raise CheckpointError(f"models directory not found: {models_dir}")
        if infer_config is not None and infer_config.carry_path is not None:
            raise ValueError("infer_config.carry_path names one spill file, but the three TRMs need one each: "
                             "give from_dir(carry_dir=...) instead")
        if carry_dir is not None:
            Path(carry_dir).mkdir(parents=True, exist_ok=True)
        feedback_dir = Path(feedback_dir) if feedback_dir is not None else models_dir / FEEDBACK_DIR
        parts, missing = {}, {}
        for kind in KINDS:
            path = models_dir / kind
            if path.exists():
                config = infer_config
                if carry_dir is not None:
                    config = (config or InferConfig()).model_copy(
                        update={"carry_path": Path(carry_dir) / f"{kind}.carry.sqlite"})
                parts[kind] = CLASSES[kind].from_checkpoint(path, use_carry=use_carry, device=device,
                                                            infer_config=config, backend=backend,
                                                            feedback_dir=feedback_dir)
            else:
                missing[kind] = f"not found: {path}"
                logger.warning("no %s TRM in %s: running without it", kind, models_dir)
        if not parts:
            raise CheckpointError(f"{models_dir} holds no TRM checkpoint: expected memory/, tool/ or reasoning/")
        brain = cls(**parts, **kwargs)
        brain.missing = missing
        return brain

    def _parts(self) -> dict:
        return {k: p for k, p in (("memory", self.memory), ("tool", self.tool), ("reasoning", self.reasoning))
                if p is not None}

    # --- one turn -----------------------------------------------------------------------------------------
    async def process_input(self, text: str, conversation_id: str = "default", available_tools=None,
                            context: dict | str | None = None, previous_error: str | None = None) -> dict:
        """Run one turn: memories, then a tool (fast path) or a plan, then the LLM if there is one.

        Args:
            text: The user's message.
            conversation_id: Whose carries to start from and update.
            available_tools: Tool names or ``{name, description}`` objects; None means the whole catalogue.
            context: The app's UI context (a dict, or text), used by memory and tool selection.
            previous_error: The error of the tool call that just failed in this conversation, if any.

        Returns:
            ``memories`` (the retrieved ``[{"id", "text", "score", "source"}]``, empty when memory abstains or
            is absent); ``memory`` (the full retrieve result or None); ``tool`` (the select_tool result or
            None); ``fast_path`` (True when the tool was confident enough to skip planning); ``tool_result``
            (the executor's result or None); ``tool_error`` (the executor's exception as text, or None);
            ``plan`` (the plan result or None); ``context`` (the assembled context with its ``prompt``);
            ``response`` (the LLM's reply or None); ``timings_ms`` (per stage and ``total``).

        Raises:
            TypeError / ValueError: Bad text, conversation id, tool list, context or error message.
        """
        text = validate_text(text, "text")
        conversation_id = validate_conversation_id(conversation_id)
        if context is not None and not isinstance(context, (dict, str)):
            raise TypeError(f"context must be a dict or a string, got {type(context).__name__}")
        # Check everything before the first call, so that bad input never leaves a turn half-applied to the carries.
        if isinstance(context, str):
            validate_text(context, "context", allow_empty=True)
        if available_tools is not None:
            normalize_tools(available_tools)
        if previous_error is not None:
            validate_text(previous_error, "previous_error", allow_empty=True)
        context_text = flatten_context(context) if isinstance(context, dict) else context
        timings: dict[str, float] = {}
        start = time.perf_counter()

        async def timed(stage: str, fn, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            finally:
                timings[stage] = round((time.perf_counter() - t0) * 1000, 3)

        memory = tool = plan = tool_result = tool_error = response = None
        if self.memory is not None:
            memory = await timed("memory", self.memory.retrieve, text, k=self.memory_k,
                                 conversation_id=conversation_id, context=context_text or None)
        memories = memory["memories"] if memory is not None and not memory["abstain"] else []
        if self.tool is not None:
            tool = await timed("tool", self.tool.select_tool, text, available_tools=available_tools,
                               context=context, previous_error=previous_error, conversation_id=conversation_id)
        fast_path = tool is not None and not tool["abstain"] and tool["confidence"] >= self.fast_path_threshold
        assembled = {"conversation_id": conversation_id, "user": text, "ui_context": context,
                     "previous_error": previous_error, "memories": memories}
        if fast_path and self.tool_executor is not None:
            t0 = time.perf_counter()
            try:
                tool_result = await self.tool_executor(tool["selected_tool"], text, dict(assembled))
            except Exception as exc:  # a failing tool is part of the turn, not a crash of the brain
                tool_error = f"{type(exc).__name__}: {exc}"
                logger.warning("tool %s failed: %s", tool["selected_tool"], tool_error)
            timings["tool_executor"] = round((time.perf_counter() - t0) * 1000, 3)
        if (not fast_path or tool_error) and self.reasoning is not None:  # no tool, or it failed: plan
            plan = await timed("plan", self.reasoning.plan, text, conversation_id=conversation_id)
        assembled.update(
            tool=None if tool is None else {"name": tool["selected_tool"], "confidence": tool["confidence"],
                                            "fast_path": fast_path},
            tool_result=tool_result, tool_error=tool_error,
            plan=None if plan is None else {"steps": plan["plan_steps"], "complexity": plan["complexity"],
                                            "confidence": plan["confidence"]})
        assembled["prompt"] = render_prompt(assembled)
        self._remember(conversation_id, {
            "text": text, "available_tools": available_tools,
            "tool": tool["selected_tool"] if tool is not None else None,
            "plan_steps": list(plan["plan_steps"]) if plan is not None else []})
        if self.llm is not None:
            t0 = time.perf_counter()
            response = await self.llm.chat(assembled)
            timings["llm"] = round((time.perf_counter() - t0) * 1000, 3)
        timings["total"] = round((time.perf_counter() - start) * 1000, 3)
        return {"memories": memories, "memory": memory, "tool": tool, "fast_path": fast_path,
                "tool_result": tool_result, "tool_error": tool_error, "plan": plan, "context": assembled,
                "response": response, "timings_ms": timings}

    def process(self, text: str, conversation_id: str = "default", available_tools=None,
                context: dict | str | None = None, previous_error: str | None = None) -> dict:
        """``process_input`` for synchronous code. Raises RuntimeError inside a running event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.process_input(text, conversation_id, available_tools, context, previous_error))
        raise RuntimeError("process() was called inside a running event loop: use `await process_input(...)`")

    # --- feedback -----------------------------------------------------------------------------------------
    def _remember(self, conversation_id: str, turn: dict) -> None:
        with self._turns_lock:
            self._turns[conversation_id] = turn
            self._turns.move_to_end(conversation_id)
            while len(self._turns) > MAX_REMEMBERED_TURNS:
                self._turns.popitem(last=False)

    def last_turn(self, conversation_id: str) -> dict | None:
        """What ``feedback`` refers to: the conversation's last turn (``text``, ``available_tools``, ``tool``,
        ``plan_steps``), or None when it had none since the start (or its ``reset_conversation``)."""
        with self._turns_lock:
            turn = self._turns.get(conversation_id)
            return dict(turn) if turn is not None else None

    def feedback(self, conversation_id: str, *, used: list[str] | None = None, rejected: list[str] | None = None,
                 tool_status: str | None = None, tool_error: str | None = None, tool: str | None = None,
                 plan_success: bool | None = None, plan_steps: list[str] | None = None) -> dict:
        """Tell the brain how the conversation's last turn went, for ``dexter-brain learn``: any of the memories
        it used or turned down, how the tool call went, whether the plan worked. Each part goes to its TRM's
        feedback call (``MemoryTRM.feedback``, ``ToolTRM.record_outcome``, ``ReasoningTRM.record_outcome``),
        which appends it to the feedback directory in the raw-data format. Every argument is checked before
        anything is written.

        Args:
            conversation_id: The conversation; the feedback is about its last ``process_input`` (memory: its
                last ``retrieve``, which a turn makes).
            used: Ids of the memories the user relied on (``[]``: none helped).
            rejected: Ids of memories shown but turned down.
            tool_status: ``success`` or ``error``: how the call of the turn's tool went.
            tool_error: The error text when ``tool_status`` is ``error``.
            tool: The tool that was actually called, when the app called another than the one selected.
            plan_success: Whether the turn's plan worked.
            plan_steps: The steps actually carried out, when they differ from the plan returned.

        Returns:
            ``conversation_id`` and, for each part recorded (None otherwise): ``memory`` (``query``, ``used``,
            ``rejected``), ``tool`` (the logged call), ``plan`` (``pattern_id``, ``goal``, ``steps``,
            ``success``).

        Raises:
            ValueError / TypeError: Nothing to record; a part for a TRM the brain lacks or a turn that had no tool
                or no plan; unknown memory ids; a bad status, error, tool or steps; ``tool_error``/``tool``
                without ``tool_status``, ``plan_steps`` without ``plan_success``; no turn (or no retrieve) in the
                conversation to refer to.

        Example:
            >>> turn = brain.process("What's Sam's phone number?", conversation_id="c1")  # doctest: +SKIP
            >>> brain.feedback("c1", used=[turn["memories"][0]["id"]], tool_status="success")  # doctest: +SKIP
        """
        conversation_id = validate_conversation_id(conversation_id)
        has_memory = used is not None or rejected is not None
        if tool_status is None and (tool_error is not None or tool is not None):
            raise ValueError("tool_error and tool describe a tool call: give tool_status with them")
        if plan_success is None and plan_steps is not None:
            raise ValueError("plan_steps describes a plan's outcome: give plan_success with it")
        if not (has_memory or tool_status is not None or plan_success is not None):
            raise ValueError("nothing to record: give used/rejected (the memories), tool_status (how the tool call "
                             "went) and/or plan_success (whether the plan worked)")
        turn = self.last_turn(conversation_id)
        recorded: dict[str, Any] = {"conversation_id": conversation_id, "memory": None, "tool": None, "plan": None}
        writes = []  # (part, the write of its checked arguments): every part checked before the first write
        if has_memory:
            memory = self._part_for_feedback("memory")
            carry = memory.core.carries.get(conversation_id) if memory.core.use_carry else None
            # The conversation's last retrieve (a turn makes one); the turn's text when there is no carry.
            query = None if carry is not None and carry.extra.get("last_query") else (turn or {}).get("text")
            cid, query, used_ids, rejected_ids = memory.check_feedback(conversation_id, used, rejected, query)
            writes.append(("memory", lambda: memory.feedback(cid, used_ids, rejected_ids, query=query)))
        if tool_status is not None:
            part = self._part_for_feedback("tool")
            turn = self._turn_for_feedback(turn, conversation_id, "tool")
            name = tool if tool is not None else turn["tool"]
            offered = turn["available_tools"]
            if tool is not None and offered is not None and tool not in {n for n, _ in normalize_tools(offered)}:
                offered = [*offered, tool]  # the app called a tool it had not offered the brain: offered now
            call = part.check_outcome(turn["text"], name, tool_status, tool_error, conversation_id, offered)
            writes.append(("tool", lambda: part.record_outcome(**call)))
        if plan_success is not None:
            planner = self._part_for_feedback("reasoning")
            turn = self._turn_for_feedback(turn, conversation_id, "plan")
            steps = plan_steps if plan_steps is not None else turn["plan_steps"]
            if plan_steps is None and not steps:
                raise ValueError("the last turn made no plan: give plan_steps= (the steps that were carried out)")
            outcome = planner.check_outcome(turn["text"], steps, plan_success)
            writes.append(("plan", lambda: planner.record_outcome(*outcome)))
        for key, write in writes:
            recorded[key] = write()
        return recorded

    def _part_for_feedback(self, kind: str):
        part = getattr(self, kind)
        if part is None:
            raise ValueError(f"no {kind} TRM is loaded ({self.missing.get(kind, 'not given')}): its feedback cannot "
                             f"be recorded")
        return part

    @staticmethod
    def _turn_for_feedback(turn: dict | None, conversation_id: str, what: str) -> dict:
        if turn is None:
            raise ValueError(f"conversation {conversation_id!r} has no turn to give {what} feedback on "
                             f"(process_input first)")
        return turn

    # --- conversations ------------------------------------------------------------------------------------
    def reset_conversation(self, conversation_id: str) -> None:
        """Forget one conversation's carry in all three TRMs (and its last turn: ``feedback`` has none to refer
        to until the next)."""
        conversation_id = validate_conversation_id(conversation_id)
        for part in self._parts().values():
            part.reset_carry(conversation_id)
        with self._turns_lock:
            self._turns.pop(conversation_id, None)

    def save_carries(self, directory: str | Path) -> dict[str, Path]:
        """Write each TRM's carries to ``directory/<kind>.carry.safetensors``; returns the files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return {kind: part.save_carry(carry_file(directory, kind)) for kind, part in self._parts().items()}

    def load_carries(self, directory: str | Path) -> dict[str, int]:
        """Load the carries ``save_carries`` wrote (a missing file counts 0); returns conversations per TRM."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"carry directory not found: {directory}")
        counts = {}
        for kind, part in self._parts().items():
            path = carry_file(directory, kind)
            counts[kind] = part.load_carry(path) if path.exists() else 0
        return counts

    # --- for the host app -----------------------------------------------------------------------------------
    def health(self) -> dict:
        """``status`` (ok | degraded), ``models`` (per TRM: loaded, version, step, device, checkpoint, or
        why it is missing), ``device``, ``conversations`` (held per TRM and in all), ``llm``, ``tool_executor``."""
        models, held, devices = {}, set(), set()
        for kind in KINDS:
            part = getattr(self, kind)
            if part is None:
                models[kind] = {"loaded": False, "reason": self.missing.get(kind, "not given")}
                continue
            core = part.core
            ids = core.carries.conversations()
            held.update(ids)
            devices.add(str(core.device))
            models[kind] = {"loaded": True, "version": core.meta.get("package_version"),
                            "step": core.meta.get("step"), "device": str(core.device),
                            "checkpoint": str(core.directory), "use_carry": core.use_carry, "conversations": len(ids)}
        return {"status": "ok" if all(m["loaded"] for m in models.values()) else "degraded", "models": models,
                "device": ", ".join(sorted(devices)), "conversations": len(held),
                "llm": self.llm is not None, "tool_executor": self.tool_executor is not None}

    def capabilities(self) -> dict:
        """Per TRM: ``available``, ``operations`` and its ``describe()`` (sizes, vocabulary, steps, bank);
        plus the fast-path threshold and memory_k."""
        out: dict[str, Any] = {}
        for kind in KINDS:
            part = getattr(self, kind)
            out[kind] = ({"available": True, "operations": [*OPERATIONS[kind], FEEDBACK_OPERATIONS[kind]],
                          **part.describe()} if part is not None else {"available": False, "operations": []})
        out.update(fast_path_threshold=self.fast_path_threshold, memory_k=self.memory_k,
                   llm=self.llm is not None, tool_executor=self.tool_executor is not None)
        return out


def render_prompt(context: dict) -> str:
    """The assembled context as text for an LLM."""
    lines = [f"User: {context['user']}"]
    if context.get("ui_context"):
        ui = context["ui_context"]
        lines.append(f"App context: {flatten_context(ui) if isinstance(ui, dict) else ui}")
    if context.get("previous_error"):
        lines.append(f"The previous tool call failed: {context['previous_error']}")
    if context["memories"]:
        lines.append("Relevant memories:")
        lines += [f"- {m['text']} (source: {m['source']})" for m in context["memories"]]
    else:
        lines.append("Relevant memories: none stored")
    tool = context.get("tool")
    if tool is not None:
        lines.append(f"Tool: {tool['name']} (confidence {tool['confidence']:.2f}"
                     f"{', fast path' if tool['fast_path'] else ''})")
    if context.get("tool_error"):
        lines.append(f"Tool error: {context['tool_error']}")
    elif context.get("tool_result") is not None:
        lines.append(f"Tool result: {context['tool_result']}")
    plan = context.get("plan")
    if plan is not None and plan["steps"]:
        lines.append(f"Plan ({plan['complexity']}):")
        lines += [f"{i}. {step}" for i, step in enumerate(plan["steps"], 1)]
    return "\n".join(lines)


__all__ = ["UnifiedConsciousness", "LLMClient", "ToolExecutor", "render_prompt"]
