"""Export each TRM's scoring core to ONNX, and check an export against the checkpoint it came from.

The exported ``scorer.onnx`` computes what ``dexter_brain.inference.halting_call`` computes for a batch:
the input reader, the recursion with a fixed budget of supervision steps (unrolled; each row keeps its
state from the step at which it halted, exactly as ``think`` does, so the results equal the adaptive
torch path), the candidate encoder and the scorer (floor + residual; the per-row ``mode`` picks the
reasoning floor's weights). A checkpoint that scores with its floor alone exports the floor alone. Memory
and tool also get ``encoder.onnx`` (candidate ids -> vectors), so a memory bank or a tool catalogue is
encoded once and the scorer reads the vectors; reasoning encodes its candidate steps inside the scorer.

Batch, candidate and token axes are dynamic. Graph inputs (each only where the kind uses it):

    query_ids (B, L) int64     query_feats (B, G) float32    cand_ids (B, K, C) int64 | cand_vecs (B, K, D)
    cand_feats (B, K, F)       cand_mask (B, K) bool         mode (B,) int64 (reasoning)
    carry_y, carry_z (B, S, D) float32 (the starting state: the conversation's carry or the initial state)
    max_steps () int64 (at most the exported budget)          halt_threshold () float32

and outputs ``scores`` (B, K), ``null_score`` (B,) (memory), ``fail_logit`` (B, K) (tool),
``halt_logit`` (B,), ``y``, ``z`` and ``steps`` (B,) int64 (the floor alone: ``scores`` only).

The files live beside the checkpoint, outside it (``models/memory/onnx/best/`` for ``models/memory/best/``),
so the checkpoint directory stays exactly what training wrote. ``export.json`` records the sha256 of the
checkpoint's weights, config and scorer, so an export of other weights is refused at load.

    from dexter_brain.export import export_brain
    export_brain("models", int8=True)      # or: dexter-brain export --format onnx --models-dir models --int8
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from dexter_brain import __version__
from dexter_brain.checkpoint import SCORER, WEIGHTS, CheckpointError, load_checkpoint, resolve_checkpoint
from dexter_brain.io import dump_json, make_temp_dir, read_json, replace_dir, sha256_file
from dexter_brain.model import RecursiveModel

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
OPSET = 17
EXPORT_DIR = "onnx"
MANIFEST = "export.json"
SCORER_FILE = "scorer.onnx"
ENCODER_FILE = "encoder.onnx"
INT8_SCORER_FILE = "scorer.int8.onnx"
"""The int8 copy of the scorer. The candidate encoder has none: its vectors are what a memory bank stores, once
per weights and shared by every backend, so every backend encodes in fp32."""
CHECKED_FILES = (WEIGHTS, "config.json", SCORER)
"""The checkpoint files an export is made from (their sha256 is recorded and checked at load)."""
INSTALL_HINT = "install the extra: pip install 'dexter-brain[onnx]'"


class ExportError(CheckpointError):
    """An ONNX export is missing, stale (made from other weights) or cannot be made."""


def onnx_dir_for(checkpoint: str | Path) -> Path:
    """Where the export of a checkpoint directory lives: ``<kind dir>/onnx/<checkpoint name>/``."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent / EXPORT_DIR / checkpoint.name


def export_command(checkpoint: Path) -> str:
    """The command that (re)makes the export of ``checkpoint``."""
    models_dir = checkpoint.parent.parent
    if checkpoint.name == "best" and checkpoint.parent.name in KINDS:
        return f"dexter-brain export --format onnx --models-dir {models_dir} --trm {checkpoint.parent.name}"
    return f"python -c \"from dexter_brain.export import export_checkpoint; export_checkpoint('{checkpoint}')\""


def require_onnx():
    """Import onnx, or an ExportError saying how to install it."""
    try:
        import onnx
        import onnxruntime  # noqa: F401  (the export is checked with it)
    except ImportError as exc:
        raise ExportError(f"the ONNX export needs onnx and onnxruntime ({exc.name} is not installed): "
                          f"{INSTALL_HINT}") from exc
    return onnx


# --- the graphs -----------------------------------------------------------------------------------------
def graph_inputs(model: RecursiveModel) -> list[str]:
    """The scorer graph's inputs for this model, in order."""
    config = model.config
    if not model.use_residual:
        names = ["cand_feats", "cand_mask"]
    else:
        names = ["query_ids"] + (["query_feats"] if config.num_query_features else [])
        names += ["cand_ids" if config.kind == "reasoning" else "cand_vecs", "cand_feats", "cand_mask"]
    if config.kind == "reasoning":  # the wrapper always passes the mode (plan or next step)
        names.append("mode")
    if model.use_residual:
        names += ["carry_y", "carry_z", "max_steps", "halt_threshold"]
    return names


def graph_outputs(model: RecursiveModel) -> list[str]:
    if not model.use_residual:
        return ["scores"]
    kind = model.config.kind
    return ["scores"] + (["null_score"] if kind == "memory" else []) + (["fail_logit"] if kind == "tool" else []) \
        + ["halt_logit", "y", "z", "steps"]


class HaltedCall(nn.Module):
    """``halting_call`` with a fixed budget of supervision steps, as one traceable module."""

    def __init__(self, model: RecursiveModel, budget: int):
        super().__init__()
        self.model, self.budget = model, budget
        self.input_names, self.output_names = graph_inputs(model), graph_outputs(model)

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        a = dict(zip(self.input_names, args))
        m = self.model
        if not m.use_residual:
            scores = m.floor_scores(a["cand_feats"], a.get("mode"))
            return (scores.masked_fill(~a["cand_mask"], float("-inf")),)
        x = m.read(a["query_ids"], a.get("query_feats"))
        y, z = a["carry_y"], a["carry_z"]
        active = torch.ones_like(a["cand_mask"][:, 0])  # (B,) bool
        steps = torch.zeros_like(active, dtype=torch.long)
        for i in range(self.budget):  # unrolled: the graph always runs the budget; halted rows keep their state
            active = active & (a["max_steps"] > i)
            y_new, z_new = m.recurse(x, y, z)
            keep = active[:, None, None]
            y, z = torch.where(keep, y_new, y), torch.where(keep, z_new, z)
            steps = steps + active.long()
            active = active & (torch.sigmoid(m.halt_logit(y_new)) <= a["halt_threshold"])
        cand_vecs = a["cand_vecs"] if "cand_vecs" in a else m.encode_candidates(a["cand_ids"])
        out = m.score(y, cand_vecs, a["cand_feats"], a["cand_mask"], mode=a.get("mode"))
        named = {"scores": out.scores, "null_score": out.null_score, "fail_logit": out.fail_logit,
                 "halt_logit": out.halt_logit, "y": y, "z": z, "steps": steps}
        return tuple(named[n] for n in self.output_names)


class CandidateEncoding(nn.Module):
    """``encode_candidates`` alone: (N, C) ids -> (N, D) vectors."""

    def __init__(self, model: RecursiveModel):
        super().__init__()
        self.model = model

    def forward(self, cand_ids: Tensor) -> Tensor:
        return self.model.encode_candidates(cand_ids)


def example_inputs(model: RecursiveModel, budget: int, B: int = 2, K: int = 3) -> dict[str, Tensor]:
    """Inputs of the right types and shapes to trace the scorer with."""
    c = model.config
    g = torch.Generator().manual_seed(0)
    y, z = model.initial_state(B)
    every = {
        "query_ids": torch.randint(1, c.vocab_size, (B, c.max_query_len), generator=g),
        "query_feats": torch.rand(B, c.num_query_features, generator=g),
        "cand_ids": torch.randint(1, c.vocab_size, (B, K, c.max_candidate_len), generator=g),
        "cand_vecs": torch.randn(B, K, c.hidden_size, generator=g),
        "cand_feats": torch.rand(B, K, c.num_candidate_features, generator=g),
        "cand_mask": torch.ones(B, K, dtype=torch.bool),
        "mode": torch.zeros(B, dtype=torch.long),
        "carry_y": y.contiguous(), "carry_z": z.contiguous(),
        "max_steps": torch.tensor(budget, dtype=torch.long),
        "halt_threshold": torch.tensor(0.5, dtype=torch.float32),
    }
    return {n: every[n] for n in graph_inputs(model)}


DYNAMIC_AXES = {
    "query_ids": {0: "batch", 1: "query_tokens"}, "query_feats": {0: "batch"},
    "cand_ids": {0: "batch", 1: "candidates", 2: "candidate_tokens"}, "cand_vecs": {0: "batch", 1: "candidates"},
    "cand_feats": {0: "batch", 1: "candidates"}, "cand_mask": {0: "batch", 1: "candidates"}, "mode": {0: "batch"},
    "carry_y": {0: "batch"}, "carry_z": {0: "batch"}, "y": {0: "batch"}, "z": {0: "batch"},
    "scores": {0: "batch", 1: "candidates"}, "null_score": {0: "batch"}, "fail_logit": {0: "batch", 1: "candidates"},
    "halt_logit": {0: "batch"}, "steps": {0: "batch"},
}


def _rms_norm_symbolic(g, x, normalized_shape, weight, eps):
    # The legacy exporter has no aten::rms_norm; the model only normalises over the last axis, unscaled.
    two = g.op("Constant", value_t=torch.tensor(2.0))
    mean = g.op("ReduceMean", g.op("Pow", x, two), axes_i=[-1], keepdims_i=1)
    eps = g.op("Constant", value_t=torch.tensor(1e-6 if eps is None else eps, dtype=torch.float32))
    return g.op("Div", x, g.op("Sqrt", g.op("Add", mean, eps)))


def _trace_to_onnx(module: nn.Module, inputs: tuple[Tensor, ...], path: Path, input_names: list[str],
                   output_names: list[str], dynamic_axes: dict) -> None:
    from torch.onnx import symbolic_helper

    symbolic = symbolic_helper.parse_args("v", "v", "v", "f")(_rms_norm_symbolic)
    torch.onnx.register_custom_op_symbolic("aten::rms_norm", symbolic, OPSET)
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo's, which needs onnxscript and takes
        # minutes on a graph unrolled this far; its traces are exact here (the tests compare them).
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)


def _fold_weight_identities(path: Path) -> None:
    """Point every consumer of ``Identity(initializer)`` at the initializer itself and drop the Identity.

    The tracer passes a weight used at many unrolled steps through one Identity per use; the quantiser then
    sees a non-constant operand at those uses and keeps them (and the fp32 copy of the weight) in fp32.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in weights and n.output[0] not in outputs}
    if not alias:
        return
    kept = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for node in kept:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.save(model, str(path))


QUANTIZED_SCOPES = ("/net/", "/reader/", "/candidates/", "/token_embedding/")
"""The modules whose matrices int8 stores: the recursive network, the input reader, the candidate encoder
(reasoning's, inside its scorer) and the token embedding: where the weights are. The scorer's heads stay fp32:
their inputs are raw hand-made features of very different scales, which one per-tensor activation scale would
flatten, and they are small."""


class _QuantizerNotes(logging.Filter):
    # quantize_dynamic logs on the root logger: a hint to run onnxruntime's pre-processing (whose symbolic shape
    # inference fails on these graphs) and a line per MatMul of two activations it leaves in fp32. Noise here.
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


def _quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import onnx

    nodes = [n.name for n in onnx.load(str(fp32)).graph.node
             if n.op_type in ("MatMul", "Gather") and any(scope in n.name for scope in QUANTIZED_SCOPES)]
    notes = _QuantizerNotes()
    logging.getLogger().addFilter(notes)
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, nodes_to_quantize=nodes)
    finally:
        logging.getLogger().removeFilter(notes)


# --- export ---------------------------------------------------------------------------------------------
def export_checkpoint(checkpoint: str | Path, out_dir: str | Path | None = None, *, int8: bool = False,
                      max_steps: int | None = None) -> dict:
    """Export one checkpoint's scoring core (and candidate encoder) to ONNX, atomically.

    Args:
        checkpoint: A checkpoint directory, or a kind's training directory holding ``best/``.
        out_dir: Where the files go (default ``onnx_dir_for(checkpoint)``); replaced if it exists.
        int8: Also write an int8 dynamically quantised copy of the scorer (``scorer.int8.onnx``).
        max_steps: The budget of supervision steps to unroll (default: the model's ``max_supervision_steps``).

    Returns:
        The written ``export.json``: ``kind``, ``residual``, ``budget``, ``opset``, ``inputs``, ``outputs``,
        ``checkpoint`` (the sha256 of its weights, config and scorer), ``files`` (name -> sha256),
        ``bytes`` (name -> size) and versions; plus ``dir``, the output directory.

    Raises:
        ExportError: onnx or onnxruntime is not installed, or the export fails its check.
        CheckpointError: The checkpoint is missing or broken.

    Example:
        >>> export_checkpoint("models/memory", int8=True)["files"]  # doctest: +SKIP
    """
    onnx = require_onnx()
    directory = resolve_checkpoint(checkpoint)
    model, _, _, meta, _ = load_checkpoint(directory, device="cpu")
    budget = max_steps or model.config.max_supervision_steps
    if budget < 1:
        raise ExportError(f"max_steps must be at least 1, got {budget}")
    out_dir = Path(out_dir) if out_dir is not None else onnx_dir_for(directory)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_dir.parent, prefix=f".{out_dir.name}.")  # the umask's mode, as checkpoints
    try:
        scorer = HaltedCall(model, budget).eval()
        inputs = example_inputs(model, budget)
        _trace_to_onnx(scorer, tuple(inputs.values()), tmp / SCORER_FILE, scorer.input_names,
                       scorer.output_names, {n: DYNAMIC_AXES[n] for n in (*scorer.input_names, *scorer.output_names)
                                             if n in DYNAMIC_AXES})
        files = [SCORER_FILE]
        if model.use_residual and model.config.kind != "reasoning":
            ids = torch.randint(1, model.config.vocab_size, (3, model.config.max_candidate_len))
            _trace_to_onnx(CandidateEncoding(model).eval(), (ids,), tmp / ENCODER_FILE, ["cand_ids"], ["cand_vecs"],
                           {"cand_ids": {0: "candidates", 1: "candidate_tokens"}, "cand_vecs": {0: "candidates"}})
            files.append(ENCODER_FILE)
        for name in files:
            _fold_weight_identities(tmp / name)
            try:
                onnx.checker.check_model(str(tmp / name), full_check=True)
            except Exception as exc:
                raise ExportError(f"the exported {name} of {directory} fails onnx.checker: {exc}") from exc
        if int8:
            _quantize(tmp / SCORER_FILE, tmp / INT8_SCORER_FILE)
            files.append(INT8_SCORER_FILE)
        manifest = {
            "kind": model.config.kind, "residual": bool(model.use_residual), "budget": budget, "opset": OPSET,
            "inputs": scorer.input_names, "outputs": scorer.output_names,
            "checkpoint": {name: meta["files"][name] for name in CHECKED_FILES},  # checked by the load
            "files": {name: sha256_file(tmp / name) for name in files},
            "bytes": {name: (tmp / name).stat().st_size for name in files},
            "package_version": __version__, "torch_version": torch.__version__, "onnx_version": onnx.__version__,
        }
        (tmp / MANIFEST).write_text(dump_json(manifest), encoding="utf-8")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("exported %s (%s) to %s", directory, ", ".join(files), out_dir)
    return {**manifest, "dir": str(out_dir)}


def export_brain(models_dir: str | Path, *, kinds: tuple[str, ...] = KINDS, int8: bool = False,
                 max_steps: int | None = None) -> dict:
    """Export ``models_dir/<kind>/best`` for each kind found (``int8`` and ``max_steps`` as in
    ``export_checkpoint``); returns ``{kind: export.json + dir}`` and ``{kind: {"reason": ...}}`` for a kind
    without a checkpoint.

    Raises:
        ExportError: onnx is not installed, or ``models_dir`` holds none of the kinds.
    """
    require_onnx()
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ExportError(f"models directory not found: {models_dir}")
    out: dict[str, dict] = {}
    for kind in kinds:
        try:
            checkpoint = resolve_checkpoint(models_dir / kind)
        except CheckpointError as exc:
            out[kind] = {"reason": str(exc)}
            continue
        out[kind] = export_checkpoint(checkpoint, int8=int8, max_steps=max_steps)
    if all("reason" in v for v in out.values()):
        raise ExportError(f"{models_dir} holds no TRM checkpoint to export (expected memory/, tool/ or reasoning/)")
    return out


# --- checking an export at load ----------------------------------------------------------------------------
def check_export(checkpoint: str | Path, onnx_dir: str | Path | None = None, *, int8: bool = False) -> dict:
    """The export of ``checkpoint`` (its ``export.json`` plus ``dir``), checked: present, made from these very
    weights, config and scorer, and its files intact.

    Raises:
        ExportError: Missing, stale or damaged, with the command that remakes it.
    """
    directory = resolve_checkpoint(checkpoint)
    onnx_dir = Path(onnx_dir) if onnx_dir is not None else onnx_dir_for(directory)
    redo = f"run `{export_command(directory)}`" + (" with --int8" if int8 else "")
    if not (onnx_dir / MANIFEST).exists():
        raise ExportError(f"no ONNX export of {directory} (expected {onnx_dir / MANIFEST}): {redo}")
    try:
        manifest = read_json(onnx_dir / MANIFEST)
        recorded = manifest["checkpoint"]
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{onnx_dir / MANIFEST} is not a valid export record ({exc}): {redo}") from exc
    changed = [name for name in CHECKED_FILES if recorded.get(name) != sha256_file(directory / name)]
    if changed:
        raise ExportError(f"the ONNX export in {onnx_dir} was made from other weights than {directory} "
                          f"({', '.join(changed)} changed since): {redo}")
    if int8 and INT8_SCORER_FILE not in manifest["files"]:
        raise ExportError(f"no int8 export in {onnx_dir}: {redo}")
    wanted = [INT8_SCORER_FILE if int8 else SCORER_FILE] + [n for n in manifest["files"] if n == ENCODER_FILE]
    for name in wanted:
        path = onnx_dir / name
        if not path.exists() or sha256_file(path) != manifest["files"].get(name):
            raise ExportError(f"{path} is {'damaged' if path.exists() else 'missing'}: {redo}")
    return {**manifest, "dir": str(onnx_dir)}
