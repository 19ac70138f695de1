"""``ToolTRM``: choose a tool among those available, by the task, the context and what just failed.

Candidates are the available tools (names, or ``{name, description}``; a list of thousands is shortlisted
first, see ``dexter_brain.inputs.tool``): a tool outside the list is never returned, and a tool never seen
in training is ranked by its name and description. The carry keeps the conversation's latent state and
the tool selected last, so a ``previous_error`` that does not name the tool still steers away from the
one that failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dexter_brain.checkpoint import save_checkpoint
from dexter_brain.config import InferConfig
from dexter_brain.corpora.tool import flatten_context
from dexter_brain.features.common import tool_text
from dexter_brain.features.tool import CANDIDATE_FEATURES, ToolFeaturizer
from dexter_brain.inputs.tool import ToolInputs
from dexter_brain.wrappers.carry import CarryStore
from dexter_brain.wrappers.common import (
    CALIBRATION_FILE, FeedbackSink, TRMCore, check_conversations, featurizer_from_state, padded, softmax,
    split_by_conversation, validate_conversation_id, validate_text,
)

MAX_TOOLS = 10_000
_FAIL_RATE = CANDIDATE_FEATURES.index("fail_rate")


def normalize_tools(available_tools) -> list[tuple[str, str | None]]:
    """``["a", {"name": "b", "description": "..."}]`` -> [(name, description)], with clear errors."""
    if not isinstance(available_tools, (list, tuple)):
        raise TypeError(f"available_tools must be a list of names or {{name, description}} objects, "
                        f"got {type(available_tools).__name__}")
    if not available_tools:
        raise ValueError("available_tools is empty: give at least one tool, or None for the whole catalogue")
    if len(available_tools) > MAX_TOOLS:
        raise ValueError(f"available_tools has {len(available_tools)} tools (at most {MAX_TOOLS})")
    out: dict[str, str | None] = {}
    for i, tool in enumerate(available_tools):
        if isinstance(tool, str):
            name, description = tool, None
        elif isinstance(tool, dict) and isinstance(tool.get("name"), str):
            name, description = tool["name"], tool.get("description")
            if description is not None and not isinstance(description, str):
                raise TypeError(f"available_tools[{i}].description must be a string")
        else:
            raise TypeError(f"available_tools[{i}] must be a name or a {{name, description}} object, got {tool!r}")
        name = name.strip()
        if not name:
            raise ValueError(f"available_tools[{i}] has an empty name")
        out.setdefault(name, description)
    return list(out.items())


class ToolTRM:
    """Select a tool with a per-conversation carry.

    Example:
        >>> tool = ToolTRM.from_checkpoint("models/tool")
        >>> r = tool.select_tool("Check system status", available_tools=["system_ops.get_info", "file_system.list"])
        >>> r["selected_tool"], r["confidence"], r["ranking"]
    """

    def __init__(self, core: TRMCore, feedback_dir: str | Path | None = None):
        self.core = core
        self.feedback_sink = FeedbackSink(feedback_dir, core.directory)
        self.featurizer = featurizer_from_state(ToolFeaturizer, core)
        self.inputs = ToolInputs(self.featurizer)
        self._vectors: dict[tuple[str, str | None], torch.Tensor] = {}
        self.unseen: frozenset[str] = frozenset()
        """Tools shown to the model as never logged (the unseen-tool measurement sets it; empty in service)."""

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_carry: bool = True, device: str = "auto", *,
                        infer_config: InferConfig | None = None, carry_store: CarryStore | None = None,
                        backend: str = "torch", feedback_dir: str | Path | None = None) -> "ToolTRM":
        """Load a tool checkpoint. Raises CheckpointError for a missing, corrupt or other-kind checkpoint
        (or, with ``backend="onnx"``/``"onnx-int8"``, a missing or stale ONNX export). ``feedback_dir``: where
        ``record_outcome`` appends (default ``<models_dir>/feedback``)."""
        return cls(TRMCore(path, "tool", use_carry=use_carry, device=device, infer_config=infer_config,
                           carry_store=carry_store, backend=backend), feedback_dir=feedback_dir)

    @property
    def catalogue(self) -> list[str]:
        return sorted(self.featurizer.catalogue)

    @torch.inference_mode()
    def _tool_vectors(self, tools: list[tuple[str, str | None]]) -> torch.Tensor:
        missing = [t for t in tools if t not in self._vectors]
        if len(self._vectors) + len(missing) > 4096:  # bounded: callers may send ever new descriptions
            self._vectors.clear()
            missing = list(dict.fromkeys(tools))
        if missing:
            ids = self.core.encoder.candidates([tool_text(n, d) for n, d in missing])
            vecs = self.core.encode_candidates(ids)
            for t, v in zip(missing, vecs):
                self._vectors[t] = v
        return torch.stack([self._vectors[t] for t in tools])

    def select_tool(self, task: str, available_tools=None, context=None, previous_error: str | None = None,
                    conversation_id: str = "default", failed_tool: str | None = None) -> dict:
        """Rank the available tools for ``task`` and pick one.

        Args:
            task: What the user wants done.
            available_tools: Tool names or ``{name, description}`` objects; None means the whole catalogue.
            context: The UI context (a dict, flattened like the logs, or text).
            previous_error: The error of the call that just failed in this conversation, if any.
            conversation_id: Whose carry to start from and update.
            failed_tool: The tool whose call failed, when the app knows it; otherwise the tool this
                conversation's carry selected last is taken to be the one that failed.

        Returns:
            ``selected_tool``; ``confidence`` (calibrated probability); ``abstain`` (confidence below the
            calibrated threshold); ``ranking``: ``[(tool, probability)]`` best first (every available tool, or
            the shortlist of a list longer than 64); ``predicted_error``:
            True when the selected tool is likely to fail; ``error_probability``; ``steps``.

        Raises:
            TypeError / ValueError: A bad task, tool list, context or error message.
        """
        return self.select_tool_many([task], [available_tools], [context], [previous_error],
                                     conversation_ids=[conversation_id], failed_tools=[failed_tool])[0]

    def select_tool_many(self, tasks: list[str], available_tools: list | None = None, contexts: list | None = None,
                         previous_errors: list | None = None, conversation_ids: list[str] | str = "default",
                         failed_tools: list | None = None) -> list[dict]:
        """``select_tool`` for a batch."""
        n = len(tasks)
        tasks = [validate_text(t, "task") for t in tasks]
        tools = [normalize_tools(a) if a is not None else None for a in (available_tools or [None] * n)]
        contexts = [self._context(c) for c in (contexts or [None] * n)]
        errors = [validate_text(e, "previous_error", allow_empty=True) if e is not None else None
                  for e in (previous_errors or [None] * n)]
        failed = [validate_text(f, "failed_tool") if f is not None else None for f in (failed_tools or [None] * n)]
        if not (len(tools) == len(contexts) == len(errors) == len(failed) == n):
            raise ValueError("tasks, available_tools, contexts, previous_errors and failed_tools must have the "
                             "same length")
        ids = check_conversations(conversation_ids, n)
        results: list[dict | None] = [None] * n
        for wave in split_by_conversation(ids):
            with self.core.conversations.hold([ids[i] for i in wave]):
                outs = self._call([tasks[i] for i in wave], [tools[i] for i in wave], [contexts[i] for i in wave],
                                  [errors[i] or None for i in wave], [ids[i] for i in wave],
                                  [failed[i] for i in wave])
                for i, r in zip(wave, outs):
                    results[i] = r
        return results

    @staticmethod
    def _context(context) -> str:
        if context is None:
            return ""
        if isinstance(context, dict):
            return flatten_context(context)
        return validate_text(context, "context", allow_empty=True)

    def inputs_for(self, task: str, available_tools=None, context=None, previous_error: str | None = None,
                   conversation_id: str = "default", failed_tool: str | None = None) -> dict:
        """What a ``select_tool`` with these arguments would score now, as numpy arrays of one row:
        ``query_ids``, ``query_feats``, ``cand_feats`` and ``candidates`` (the tool names, shortlisted from a
        long list). Changes nothing; for inspection (the same arrays the training tensors hold)."""
        task = validate_text(task, "task")
        tools = normalize_tools(available_tools) if available_tools is not None else None
        error = validate_text(previous_error, "previous_error", allow_empty=True) if previous_error else None
        with self.core.lock:
            rows, names, _, arrays = self._inputs([task], [tools], [self._context(context)], [error],
                                                  [conversation_id], [failed_tool])
        return {"query_ids": arrays["query_ids"], "query_feats": arrays["query_feats"],
                "cand_feats": arrays["cand_feats"], "candidates": names[0]}

    def _inputs(self, tasks, tools, contexts, errors, conversation_ids, failed):
        core = self.core
        lists = []
        for t in tools:
            if t is None:
                t = [(n, self.featurizer.describe(n)) for n in self.catalogue]
            for name, desc in t:
                if name not in self.featurizer.catalogue or desc:
                    self.featurizer.add_tool(name, desc)
            lists.append([n for n, _ in t])
        previous = []
        for cid, err, tool in zip(conversation_ids, errors, failed):
            carry = core.carries.get(cid) if (core.use_carry and err and tool is None) else None
            previous.append(tool or (carry.extra.get("last_tool") if carry is not None else None))
        rows = self.inputs.rows(tasks, lists, contexts, previous, errors, hidden=[self.unseen] * len(tasks))
        names = [r.candidates for r in rows]
        # The residual encodes each candidate's name and description; the floor alone never reads them.
        described = [[(n, self.featurizer.describe(n)) for n in nm] for nm in names] if core.model.use_residual \
            else None
        feats, _, mask = padded([r.feats for r in rows], [range(len(n)) for n in names], len(CANDIDATE_FEATURES))
        arrays = {"query_ids": ToolInputs.query_ids(core.encoder, tasks, contexts, errors),
                  "query_feats": np.stack([r.query_feats for r in rows]), "cand_feats": feats, "cand_mask": mask}
        return rows, names, described, arrays

    @torch.inference_mode()
    def _call(self, tasks, tools, contexts, errors, conversation_ids, failed) -> list[dict]:
        core, model = self.core, self.core.model
        with core.lock:
            rows, names, described, arrays = self._inputs(tasks, tools, contexts, errors, conversation_ids, failed)
        B, K = arrays["cand_mask"].shape
        cand_vecs = torch.zeros(B, K, model.config.hidden_size, device=core.device)
        if model.use_residual:
            for b in range(B):
                cand_vecs[b, : len(names[b])] = self._tool_vectors(described[b])
        batch = {"query_ids": core.tensor(arrays["query_ids"], torch.long),
                 "query_feats": core.tensor(arrays["query_feats"]), "cand_vecs": cand_vecs,
                 "cand_feats": core.tensor(arrays["cand_feats"]), "cand_mask": core.tensor(arrays["cand_mask"])}
        result = core.call(batch, conversation_ids)
        out = result.out
        results, extras = [], []
        for b in range(B):
            n = len(names[b])
            scores = out.scores[b, :n].float().cpu().numpy()
            probs = softmax(scores, core.calibration.temperature)
            order = np.argsort(-probs, kind="stable")
            best = int(order[0])
            # The failure head when the residual is used; otherwise the tool's logged failure rate.
            error_p = float(torch.sigmoid(out.fail_logit[b, best])) if out.fail_logit is not None \
                else float(rows[b].feats[best, _FAIL_RATE])
            confidence = float(probs[best])
            results.append({
                "selected_tool": names[b][best], "confidence": confidence,
                "abstain": confidence < core.calibration.abstain_below,
                "ranking": [(names[b][i], float(probs[i])) for i in order],
                "predicted_error": error_p > 0.5, "error_probability": error_p,
                "steps": int(result.steps[b]),
            })
            extras.append({"last_tool": names[b][best]})
        core.keep_carry(conversation_ids, result, extras)
        return results

    def record_outcome(self, task: str, tool: str, status: str, error: str | None = None,
                       conversation_id: str | None = None, available_tools=None) -> dict:
        """Record how a tool call went, for ``dexter-brain learn``: one ``training_data_fast.jsonl`` line in the
        feedback directory (``feedback_dir`` of ``from_checkpoint``).

        Args:
            task: What the user asked for (the ``select_tool`` task).
            tool: The tool that was called.
            status: ``success`` or ``error``.
            error: The error text of a failed call (only with ``error``).
            conversation_id: The conversation, so that a failure and the retry after it are learnt as a
                correction.
            available_tools: The tools that were offered (names or ``{name, description}``); None: the whole
                catalogue.

        Returns:
            The record as written: ``ts``, ``conversation_id``, ``task``, ``available_tools``, ``tool``,
            ``status``, ``error``.

        Raises:
            ValueError / TypeError: An empty task or tool, another status, an error with ``success``, a tool
                not among ``available_tools``, a bad tool list; a feedback directory that may not be written.

        Example:
            >>> tool.record_outcome("Check system status", "system_ops.get_info", "error",  # doctest: +SKIP
            ...                     error="TimeoutError: no answer after 30 s", conversation_id="c1")
        """
        record = self.check_outcome(task, tool, status, error, conversation_id, available_tools)
        return self.feedback_sink.log.tool(**record)

    @staticmethod
    def check_outcome(task, tool, status, error=None, conversation_id=None, available_tools=None) -> dict:
        """The arguments of ``record_outcome`` checked, as ``FeedbackLog.tool`` keywords; writes nothing."""
        task, tool = validate_text(task, "task"), validate_text(tool, "tool")
        if status not in ("success", "error"):
            raise ValueError(f"status must be 'success' or 'error', got {status!r}")
        if error is not None:
            error = validate_text(error, "error", allow_empty=True) or None
            if status == "success" and error:
                raise ValueError("error is given but status is 'success': a failed call has status 'error'")
        if conversation_id is not None:
            conversation_id = validate_conversation_id(conversation_id)
        offered = None
        if available_tools is not None:
            tools = normalize_tools(available_tools)
            if tool not in {name for name, _ in tools}:
                raise ValueError(f"tool {tool!r} is not among available_tools")
            offered = [name if not description else {"name": name, "description": description}
                       for name, description in tools]
        return {"task": task, "tool": tool, "status": status, "error": error, "conversation_id": conversation_id,
                "available_tools": offered}

    def reset_carry(self, conversation_id: str | None = None) -> None:
        """Forget one conversation's carry (or all with no id)."""
        self.core.carries.reset(conversation_id)

    def save_carry(self, path: str | Path) -> Path:
        return self.core.carries.save(path)

    def load_carry(self, path: str | Path) -> int:
        return self.core.carries.load(path)

    def save(self, directory: str | Path) -> Path:
        core = self.core
        return save_checkpoint(directory, core.model, meta=core.meta, tokenizer=core.vocab.model_proto,
                               featurizer=self.featurizer.to_state(),
                               extra_json={CALIBRATION_FILE: core.calibration.to_dict()})

    def describe(self) -> dict:
        return {**self.core.describe(), "tools": len(self.featurizer.catalogue)}
