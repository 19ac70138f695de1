"""Running a checkpoint's ONNX export with onnxruntime in place of torch (``backend="onnx"`` on the wrappers).

``OnnxBackend`` stands in for the two things a wrapper asks of the torch model: the halted call
(``halting_call``: scores, the final state and the steps used) and the candidate encoder (a memory bank,
a tool's name and description). Its results are torch tensors shaped as the torch path's, so the wrappers,
the carry store and the calibration are the same code for both backends. The export is checked at load
(``dexter_brain.export.check_export``): missing, stale or damaged files are an ``ExportError`` that says
how to remake them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dexter_brain.export import (
    ENCODER_FILE, INSTALL_HINT, INT8_SCORER_FILE, SCORER_FILE, ExportError, check_export,
)
from dexter_brain.inference import CallResult
from dexter_brain.model import RecursiveModel, StepOutput

_DTYPES = {"query_ids": np.int64, "cand_ids": np.int64, "mode": np.int64, "cand_mask": np.bool_}


class OnnxBackend:
    """The exported graphs of one checkpoint, run by onnxruntime on CPU.

    Args:
        checkpoint: The checkpoint directory the model was loaded from.
        model: That model (its initial state and config are read; its weights are not run).
        int8: Score with the int8 copy of the scorer (candidates are always encoded in fp32).
        max_steps: The step limit calls will use; must not exceed the exported budget.
        num_threads: onnxruntime intra-op threads (None: torch's current setting, so both backends compare).
        onnx_dir: Where the export is (default ``dexter_brain.export.onnx_dir_for(checkpoint)``).

    Raises:
        ExportError: onnxruntime is not installed, or the export is missing, stale or too short a budget.
    """

    def __init__(self, checkpoint: str | Path, model: RecursiveModel, *, int8: bool = False, max_steps: int,
                 num_threads: int | None = None, onnx_dir: str | Path | None = None):
        try:  # running an export needs onnxruntime only (importing onnx too costs about a second)
            import onnxruntime as ort
        except ImportError as exc:
            raise ExportError(f"the ONNX backend needs onnxruntime (not installed): {INSTALL_HINT}") from exc

        self.manifest = check_export(checkpoint, onnx_dir, int8=int8)
        self.model, self.int8 = model, int8
        self.residual = bool(self.manifest["residual"])
        if self.residual and max_steps > self.manifest["budget"]:
            raise ExportError(f"{self.manifest['dir']} unrolls {self.manifest['budget']} supervision steps but calls "
                              f"ask for up to {max_steps}: export again with --max-steps {max_steps}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here

        def session(name: str):
            return ort.InferenceSession(str(Path(self.manifest["dir"]) / name), options,
                                        providers=["CPUExecutionProvider"])

        self.scorer = session(INT8_SCORER_FILE if int8 else SCORER_FILE)
        self.inputs = [i.name for i in self.scorer.get_inputs()]
        self.outputs = [o.name for o in self.scorer.get_outputs()]
        self.encoder = session(ENCODER_FILE) if ENCODER_FILE in self.manifest["files"] else None

    def call(self, batch: dict[str, torch.Tensor], state: tuple[torch.Tensor, torch.Tensor] | None, *,
             max_steps: int, threshold: float) -> CallResult:
        """``halting_call`` on the exported graph: the same inputs, the same outputs."""
        if bool(self.model.use_residual) != self.residual:
            raise ExportError(f"the model now scores {'with' if self.model.use_residual else 'without'} its residual "
                              f"but {self.manifest['dir']} was exported {'with' if self.residual else 'without'}")
        B = len(batch["cand_feats"])
        y, z = state if state is not None else self.model.initial_state(B)
        given = {**batch, "carry_y": y, "carry_z": z}
        feeds = {}
        for name in self.inputs:
            if name == "max_steps":
                feeds[name] = np.array(max_steps, dtype=np.int64)
            elif name == "halt_threshold":
                feeds[name] = np.array(threshold, dtype=np.float32)
            else:
                feeds[name] = np.ascontiguousarray(given[name].detach().cpu().numpy(),
                                                   dtype=_DTYPES.get(name, np.float32))
        got = {n: torch.from_numpy(v) for n, v in zip(self.outputs, self.scorer.run(None, feeds))}
        zeros = torch.zeros(B)
        out = StepOutput(y=got.get("y", y), z=got.get("z", z), scores=got["scores"],
                         null_score=got.get("null_score", zeros), halt_logit=got.get("halt_logit", zeros),
                         query_vec=None, fail_logit=got.get("fail_logit"))
        return CallResult(out=out, steps=got.get("steps", torch.zeros(B, dtype=torch.long)))

    def encode_candidates(self, cand_ids: np.ndarray) -> torch.Tensor:
        """(N, C) candidate ids -> (N, D) vectors, as ``RecursiveModel.encode_candidates``."""
        if self.encoder is None:
            raise ExportError(f"{self.manifest['dir']} has no candidate encoder (a {self.manifest['kind']} export "
                              f"{'encodes candidates inside the scorer' if self.residual else 'of the floor alone'})")
        (vectors,) = self.encoder.run(None, {"cand_ids": np.ascontiguousarray(cand_ids, dtype=np.int64)})
        return torch.from_numpy(vectors)
