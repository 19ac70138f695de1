"""``ToolTRM``: choose a tool among those available, by the task, the context and what just failed.

Candidates are exactly the available tools (names, or ``{name, description}``): a tool outside the list is
never returned, and a tool never seen in training is ranked by its name and description. The carry keeps
the conversation's latent state and the tool selected last, so a ``previous_error`` that does not name
the tool still steers away from the one that failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dexter_brain.checkpoint import save_checkpoint
from dexter_brain.config import InferConfig
from dexter_brain.corpora.tool import flatten_context
from dexter_brain.features.common import tool_query_text, tool_text
from dexter_brain.features.tool import ToolFeaturizer
from dexter_brain.wrappers.carry import CarryStore
from dexter_brain.wrappers.common import (
    CALIBRATION_FILE, TRMCore, check_conversations, featurizer_from_state, softmax, split_by_conversation,
    validate_text,
)

MAX_TOOLS = 256


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

    def __init__(self, core: TRMCore):
        self.core = core
        self.featurizer = featurizer_from_state(ToolFeaturizer, core)
        self._vectors: dict[tuple[str, str | None], torch.Tensor] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_carry: bool = True, device: str = "auto", *,
                        infer_config: InferConfig | None = None, carry_store: CarryStore | None = None) -> "ToolTRM":
        """Load a tool checkpoint. Raises CheckpointError for a missing, corrupt or other-kind checkpoint."""
        return cls(TRMCore(path, "tool", use_carry=use_carry, device=device, infer_config=infer_config,
                           carry_store=carry_store))

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
            vecs = self.core.model.encode_candidates(self.core.tensor(ids, torch.long))
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
            calibrated threshold); ``ranking``: ``[(tool, probability)]`` best first; ``predicted_error``:
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

    @torch.inference_mode()
    def _call(self, tasks, tools, contexts, errors, conversation_ids, failed) -> list[dict]:
        core, model = self.core, self.core.model
        with core.lock:
            lists = []
            for t in tools:
                if t is None:
                    t = [(n, self.featurizer.describe(n)) for n in self.catalogue]
                for name, desc in t:
                    if name not in self.featurizer.catalogue or desc:
                        self.featurizer.add_tool(name, desc)
                lists.append([(n, d or self.featurizer.describe(n)) for n, d in t])
            previous = []
            for cid, err, tool in zip(conversation_ids, errors, failed):
                carry = core.carries.get(cid) if (core.use_carry and err and tool is None) else None
                previous.append(tool or (carry.extra.get("last_tool") if carry is not None else None))
            views = [self.featurizer.view(task, ctx) for task, ctx in zip(tasks, contexts)]
            names = [[n for n, _ in lst] for lst in lists]
            feats = [self.featurizer.features(v, nm, p, e) for v, nm, p, e in zip(views, names, previous, errors)]
            qfeats = [self.featurizer.query_features(v, nm, e) for v, nm, e in zip(views, names, errors)]
        B, K = len(tasks), max(len(n) for n in names)
        D = model.config.hidden_size
        cand_vecs = torch.zeros(B, K, D, device=core.device)
        cand_feats = torch.zeros(B, K, feats[0].shape[1], device=core.device)
        mask = torch.zeros(B, K, dtype=torch.bool, device=core.device)
        for b, lst in enumerate(lists):
            cand_vecs[b, : len(lst)] = self._tool_vectors(lst)
            cand_feats[b, : len(lst)] = core.tensor(feats[b])
            mask[b, : len(lst)] = True
        batch = {"query_ids": core.tensor(core.encoder.queries(
                     [tool_query_text(t, c, e) for t, c, e in zip(tasks, contexts, errors)]), torch.long),
                 "query_feats": core.tensor(np.stack(qfeats)), "cand_vecs": cand_vecs, "cand_feats": cand_feats,
                 "cand_mask": mask}
        result = core.call(batch, conversation_ids)
        out = result.out
        results, extras = [], []
        for b in range(B):
            n = len(names[b])
            scores = out.scores[b, :n].float().cpu().numpy()
            probs = softmax(scores, core.calibration.temperature)
            order = np.argsort(-probs, kind="stable")
            best = int(order[0])
            error_p = float(torch.sigmoid(out.fail_logit[b, best])) if out.fail_logit is not None else 0.0
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
