"""Tests of the ONNX export (dexter_brain/export.py) and of the wrappers' onnx backend
(dexter_brain/onnx_backend.py): the exported graphs give the torch model's answers.

The tiny brain ships some kinds as their floor alone, so ``residual_brain`` re-saves each kind's ``last/``
weights scoring with the residual, with a halting head that stops rows at different steps (the recursion and
the per-row halting are what the export must get right), and exports it (fp32 and int8).

Run: python -m pytest tests/test_export.py -q
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from dexter_brain import MemoryTRM, ReasoningTRM, ToolTRM, UnifiedConsciousness
from dexter_brain.checkpoint import load_checkpoint, save_checkpoint
from dexter_brain.cli import main as cli_main
from dexter_brain.data import load_split
from dexter_brain.evaluation.parity import compare_backends
from dexter_brain.export import (
    ENCODER_FILE, INT8_SCORER_FILE, MANIFEST, SCORER_FILE, ExportError, export_checkpoint, onnx_dir_for,
)
from dexter_brain.io import read_rows, sha256_file

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("memory", "tool", "reasoning")
CLASSES = {"memory": MemoryTRM, "tool": ToolTRM, "reasoning": ReasoningTRM}


def resave(source: Path, target: Path, *, residual: bool, halting_seed: int | None = None, data=None) -> Path:
    """``source``'s weights saved as the checkpoint ``target``, scoring with or without the residual; with
    ``halting_seed``, the halting head drawn at random and centred on ``data``'s rows (a ``SplitData``) so
    that about half of them halt after the first step and the others later."""
    model, vocab, featurizer, meta, _ = load_checkpoint(source)
    model.use_residual = residual
    if halting_seed is not None:
        g = torch.Generator().manual_seed(halting_seed)
        with torch.no_grad():
            model.halt.weight.copy_(torch.randn(model.halt.weight.shape, generator=g) * 3.0)
            model.halt.bias.zero_()
            batch = data.batch(np.arange(len(data)))
            x = model.read(batch["query_ids"], batch["query_feats"])
            y, _ = model.recurse(x, *model.initial_state(len(data)))
            # The threshold in the widest gap between the middle half of the rows' logits: no row sits near it,
            # so float rounding cannot tip a row's halting step one way on one backend and the other on another.
            logits = model.halt_logit(y).sort().values
            n = len(logits)
            lo, hi = n // 4, max(3 * n // 4, n // 4 + 1)
            gap = int(torch.argmax(logits[lo + 1:hi + 1] - logits[lo:hi])) + lo
            model.halt.bias.fill_(-float(logits[gap] + logits[gap + 1]) / 2)
    return save_checkpoint(target, model, meta=meta, tokenizer=vocab.model_proto, featurizer=featurizer)


@pytest.fixture(scope="session")
def residual_brain(tiny_brain, tmp_path_factory) -> Path:
    """A models directory whose three ``best/`` score with the residual, exported in fp32 and int8. Read only."""
    models = tmp_path_factory.mktemp("onnx_brain") / "models"
    for kind in KINDS:
        best = resave(tiny_brain["models"] / kind / "last", models / kind / "best", residual=True, halting_seed=1,
                      data=load_split(tiny_brain["data"], kind, "val"))
        export_checkpoint(best, int8=True)
    return models


def memory_queries(tiny_brain, n: int = 3) -> list[str]:
    """The first queries of the tiny brain's validation split that have stored facts to find."""
    return [r["query"] for r in read_rows(tiny_brain["data"], "memory", "val") if r["positives"]][:n]


def one_turn_batch(core, data, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """The model inputs of corpus rows, as the wrapper hands them to ``core.call`` (vectors, not ids, for memory
    and tool: their candidates are encoded once)."""
    batch = data.batch(rows)
    out = {k: batch[k] for k in ("query_ids", "query_feats", "cand_feats", "cand_mask")}
    if core.kind == "reasoning":
        out.update(cand_ids=batch["cand_ids"], mode=batch["mode"])
    else:
        B, K, C = batch["cand_ids"].shape
        out["cand_vecs"] = core.encode_candidates(batch["cand_ids"].reshape(B * K, C).numpy()).reshape(B, K, -1)
    return out


# --- the export --------------------------------------------------------------------------------------------
def test_export_writes_checked_graphs_with_dynamic_axes_and_records_the_weights(residual_brain):
    for kind in KINDS:
        best = residual_brain / kind / "best"
        out = onnx_dir_for(best)
        assert out == residual_brain / kind / "onnx" / "best"
        manifest = json.loads((out / MANIFEST).read_text())
        expected = {SCORER_FILE, INT8_SCORER_FILE} | ({ENCODER_FILE} if kind != "reasoning" else set())
        assert set(manifest["files"]) == expected
        assert {p.name for p in out.iterdir()} == expected | {MANIFEST}
        assert manifest["checkpoint"]["model.safetensors"] == sha256_file(best / "model.safetensors")
        assert manifest["residual"] is True and manifest["budget"] == 3
        graph = onnx.load(str(out / SCORER_FILE)).graph
        onnx.checker.check_model(str(out / SCORER_FILE), full_check=True)
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
        assert dims["cand_feats"][:2] == ["batch", "candidates"] and dims["query_ids"] == ["batch", "query_tokens"]
        assert [o.name for o in graph.output] == manifest["outputs"]
        assert ("mode" in dims) == (kind == "reasoning")
        assert {"null_score": kind == "memory", "fail_logit": kind == "tool"} == \
            {n: n in manifest["outputs"] for n in ("null_score", "fail_logit")}
        # int8 stores the matrices as int8 (at this tiny size the added quantise nodes outweigh the saving)
        int8 = onnx.load(str(out / INT8_SCORER_FILE)).graph.initializer
        assert sum(i.data_type == onnx.TensorProto.INT8 for i in int8) >= 4
    # the checkpoint directory itself is untouched: only what training wrote
    assert not any(p.suffix == ".onnx" for p in (residual_brain / "memory" / "best").iterdir())


def test_an_export_directory_gets_the_umasks_mode_like_a_checkpoint(residual_brain):
    umask = os.umask(0)
    os.umask(umask)
    for kind in KINDS:
        out = onnx_dir_for(residual_brain / kind / "best")
        assert out.stat().st_mode & 0o777 == 0o777 & ~umask, kind  # readable by another service user


@pytest.mark.parametrize("kind", KINDS)
def test_the_graph_equals_the_halted_torch_call_row_by_row_with_carry(residual_brain, tiny_brain, kind):
    checkpoint = residual_brain / kind / "best"
    torch_core = CLASSES[kind].from_checkpoint(checkpoint, device="cpu").core
    onnx_core = CLASSES[kind].from_checkpoint(checkpoint, backend="onnx").core
    data = load_split(tiny_brain["data"], kind, "val")
    rows = np.arange(min(len(data), 24))
    ids = [f"c{i}" for i in rows]
    seen_steps = set()
    with torch.inference_mode():
        for turn in range(2):  # the second call starts from each conversation's carry
            batch = one_turn_batch(torch_core, data, rows)
            a, b = torch_core.call(batch, ids), onnx_core.call(batch, ids)
            mask = batch["cand_mask"]
            assert (a.out.scores[mask] - b.out.scores[mask]).abs().max() <= 1e-4
            assert torch.equal(a.out.scores[~mask], b.out.scores[~mask])  # -inf where there is no candidate
            assert torch.equal(a.steps, b.steps)
            seen_steps |= set(a.steps.tolist())
            # The internal states agree to float32 rounding, which the recursion can amplify on its way (the scores
            # above, and the steps, must agree exactly as asked).
            for name in ("y", "z", "null_score", "halt_logit"):
                torch.testing.assert_close(getattr(a.out, name), getattr(b.out, name), rtol=1e-3, atol=1e-4,
                                           msg=name)
            if kind == "tool":
                assert (a.out.fail_logit[mask] - b.out.fail_logit[mask]).abs().max() <= 1e-4
            torch_core.keep_carry(ids, a)
            onnx_core.keep_carry(ids, b)
    assert len(seen_steps) > 1, "rows halted at different steps"


def test_public_answers_equal_torch_on_validation_and_test_with_carry(residual_brain, tiny_brain):
    for split in ("val", "test"):
        result = compare_backends(residual_brain, tiny_brain["data"], backends=("torch", "onnx"), split=split)
        assert set(result) == set(KINDS)
        for kind in KINDS:
            torch_run, onnx_run = result[kind]["torch"], result[kind]["onnx"]
            assert result[kind]["rows"] > 0
            assert onnx_run["max_abs_diff"] <= 1e-4, (split, kind)
            assert onnx_run["same_top1"] == 1.0 and onnx_run["same_steps"] == 1.0, (split, kind)
            assert onnx_run["metrics"] == torch_run["metrics"], (split, kind)


def test_a_carry_saved_by_one_backend_resumes_on_the_other(residual_brain, tiny_brain, tmp_path):
    checkpoint = residual_brain / "memory" / "best"
    torch_memory = MemoryTRM.from_checkpoint(checkpoint, device="cpu")
    onnx_memory = MemoryTRM.from_checkpoint(checkpoint, backend="onnx")
    for query in (*memory_queries(tiny_brain, 2), "tell me more"):
        a = torch_memory.retrieve(query, k=5, conversation_id="c1")
        b = onnx_memory.retrieve(query, k=5, conversation_id="c1")
        assert a["memories"] and [m["id"] for m in a["memories"]] == [m["id"] for m in b["memories"]]
        assert a["steps"] == b["steps"]
    ca, cb = torch_memory.core.carries.get("c1"), onnx_memory.core.carries.get("c1")
    assert (ca.y - cb.y).abs().max() <= 1e-4 and (ca.z - cb.z).abs().max() <= 1e-4 and ca.extra == cb.extra
    fresh = MemoryTRM.from_checkpoint(checkpoint, backend="onnx")
    fresh.load_carry(torch_memory.save_carry(tmp_path / "carry.safetensors"))
    a = torch_memory.retrieve("and the other one?", k=5, conversation_id="c1")
    b = fresh.retrieve("and the other one?", k=5, conversation_id="c1")
    assert [m["id"] for m in a["memories"]] == [m["id"] for m in b["memories"]]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a["memories"], b["memories"])) <= 1e-4


def test_banks_added_memories_and_new_tools_are_encoded_by_the_exported_encoder(residual_brain, tmp_path):
    # each wrapper makes a bank of its own from the checkpoint's facts, encoding every fact with its backend
    memory = {b: MemoryTRM.from_checkpoint(residual_brain / "memory" / "best", device="cpu", backend=b,
                                           bank=tmp_path / f"{b}.sqlite") for b in ("torch", "onnx", "onnx-int8")}
    for m in memory.values():
        m.add_memory("The spare key is under the blue flower pot", id="f-key")
    assert len(memory["onnx"].bank_vectors) == len(memory["onnx"]) > 1
    assert (memory["torch"].bank_vectors - memory["onnx"].bank_vectors).abs().max() <= 1e-4
    # int8 scores in int8 but encodes in fp32: the bank's vectors are the same for every backend
    assert (memory["torch"].bank_vectors - memory["onnx-int8"].bank_vectors).abs().max() <= 1e-4
    del memory["onnx-int8"]
    a, b = (m.retrieve("where is the spare key", k=3) for m in memory.values())
    assert [x["id"] for x in a["memories"]] == [x["id"] for x in b["memories"]]
    tools = [{"name": "garden.find_key", "description": "find the spare key in the garden"}, "weather.forecast"]
    a, b = (ToolTRM.from_checkpoint(residual_brain / "tool" / "best", device="cpu", backend=backend)
            .select_tool("where did I leave the spare key", available_tools=tools) for backend in ("torch", "onnx"))
    assert a["selected_tool"] == b["selected_tool"]
    assert abs(a["error_probability"] - b["error_probability"]) <= 1e-4
    assert max(abs(p - q) for (_, p), (_, q) in zip(a["ranking"], b["ranking"])) <= 1e-4


def test_the_whole_brain_runs_on_onnx_behind_the_same_api(residual_brain):
    brains = {b: UnifiedConsciousness.from_dir(residual_brain, device="cpu", backend=b) for b in ("torch", "onnx")}
    turns = {b: asyncio.run(brain.process_input("Plan a trip to Lisbon and check my passport", conversation_id="c1"))
             for b, brain in brains.items()}
    a, b = turns["torch"], turns["onnx"]
    assert [m["id"] for m in a["memory"]["memories"]] == [m["id"] for m in b["memory"]["memories"]]
    assert a["memory"]["steps"] == b["memory"]["steps"]
    assert a["tool"]["selected_tool"] == b["tool"]["selected_tool"]
    assert (a.get("plan") or {}).get("plan_steps") == (b.get("plan") or {}).get("plan_steps")
    assert brains["onnx"].memory.describe()["backend"] == "onnx"


# --- the floor alone ---------------------------------------------------------------------------------------
def test_a_floor_only_checkpoint_exports_the_floor_alone(tiny_brain, tmp_path):
    kind_rows = {}
    for kind in KINDS:
        best = resave(tiny_brain["models"] / kind / "last", tmp_path / kind / "best", residual=False)
        manifest = export_checkpoint(best)
        assert set(manifest["files"]) == {SCORER_FILE}  # no encoder: the floor reads only the features
        assert manifest["outputs"] == ["scores"]
        assert manifest["inputs"] == ["cand_feats", "cand_mask"] + (["mode"] if kind == "reasoning" else [])
        kind_rows[kind] = best
    result = compare_backends(tmp_path, tiny_brain["data"], backends=("torch", "onnx"), split="test")
    for kind in KINDS:
        assert result[kind]["onnx"]["max_abs_diff"] <= 1e-4 and result[kind]["onnx"]["same_top1"] == 1.0
        assert result[kind]["onnx"]["same_steps"] == 1.0
    r = MemoryTRM.from_checkpoint(kind_rows["memory"], backend="onnx").retrieve(memory_queries(tiny_brain)[0])
    assert r["steps"] == 0 and r["memories"]


# --- refusing what does not fit ------------------------------------------------------------------------------
def test_a_missing_stale_or_damaged_export_is_refused_with_the_command_to_remake_it(residual_brain, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(residual_brain / "tool", models / "tool")
    best = models / "tool" / "best"
    ToolTRM.from_checkpoint(best, backend="onnx-int8")  # loads as exported
    remake = f"run `dexter-brain export --format onnx --models-dir {models} --trm tool`"

    model, vocab, featurizer, meta, _ = load_checkpoint(best)
    with torch.no_grad():
        model.score_out.weight.add_(0.01)  # retrained: other weights
    save_checkpoint(best, model, meta=meta, tokenizer=vocab.model_proto, featurizer=featurizer)
    with pytest.raises(ExportError) as stale:
        ToolTRM.from_checkpoint(models / "tool", backend="onnx")
    assert str(stale.value) == (f"the ONNX export in {models / 'tool' / 'onnx' / 'best'} was made from other weights "
                                f"than {best} (model.safetensors changed since): {remake}")
    ToolTRM.from_checkpoint(models / "tool", device="cpu")  # the torch backend does not care

    export_checkpoint(best)  # fp32 only
    ToolTRM.from_checkpoint(best, backend="onnx")
    with pytest.raises(ExportError, match=r"^no int8 export in .*: run `dexter-brain export .* with --int8$"):
        ToolTRM.from_checkpoint(best, backend="onnx-int8")
    (models / "tool" / "onnx" / "best" / SCORER_FILE).write_bytes(b"not a graph")
    with pytest.raises(ExportError, match=r"scorer\.onnx is damaged: run `dexter-brain export"):
        ToolTRM.from_checkpoint(best, backend="onnx")
    shutil.rmtree(models / "tool" / "onnx")
    with pytest.raises(ExportError) as missing:
        ToolTRM.from_checkpoint(best, backend="onnx")
    assert str(missing.value) == (f"no ONNX export of {best} (expected {models / 'tool' / 'onnx' / 'best' / MANIFEST})"
                                  f": {remake}")
    with pytest.raises(ValueError, match="backend must be one of torch, onnx, onnx-int8, got 'tflite'"):
        ToolTRM.from_checkpoint(best, backend="tflite")


def test_a_shorter_export_budget_than_the_calls_ask_for_is_refused(residual_brain, tmp_path):
    from dexter_brain.config import InferConfig

    best = resave(residual_brain / "reasoning" / "best", tmp_path / "reasoning" / "best", residual=True)
    export_checkpoint(best, max_steps=2)
    ReasoningTRM.from_checkpoint(best, backend="onnx", infer_config=InferConfig(max_supervision_steps=2))
    with pytest.raises(ExportError, match="unrolls 2 supervision steps but calls ask for up to 3: export again "
                                          "with --max-steps 3"):
        ReasoningTRM.from_checkpoint(best, backend="onnx")


def test_without_onnx_installed_the_package_imports_and_export_says_how_to_install(residual_brain, tiny_brain,
                                                                                   monkeypatch, capsys):
    for name in ("onnx", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)  # `import onnx` now fails as if it were not installed
    memory = MemoryTRM.from_checkpoint(residual_brain / "memory" / "best", device="cpu")
    assert memory.retrieve(memory_queries(tiny_brain)[0])["memories"]
    with pytest.raises(ExportError, match=r"pip install 'dexter-brain\[onnx\]'"):
        MemoryTRM.from_checkpoint(residual_brain / "memory" / "best", backend="onnx")
    assert cli_main(["export", "--format", "onnx", "--models-dir", str(residual_brain)]) == 1
    assert capsys.readouterr().err == ("error: the ONNX export needs onnx and onnxruntime (onnx is not installed): "
                                       "install the extra: pip install 'dexter-brain[onnx]'\n")


# --- the command -----------------------------------------------------------------------------------------------
def test_the_export_command_writes_what_the_onnx_backend_loads(residual_brain, tmp_path):
    models = tmp_path / "models"
    for kind in KINDS:
        shutil.copytree(residual_brain / kind / "best", models / kind / "best")
    done = subprocess.run([sys.executable, "-m", "dexter_brain.cli", "export", "--format", "onnx", "--models-dir",
                           str(models), "--int8", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(KINDS)
    assert f"memory: 3 supervision steps -> {models / 'memory' / 'onnx' / 'best'} (scorer.onnx " in lines[0]
    for kind in KINDS:
        r = CLASSES[kind].from_checkpoint(models / kind, backend="onnx-int8")
        assert r.core.onnx.int8 and r.describe()["backend"] == "onnx-int8"


def test_the_export_command_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["export", "--format", "onnx", "--models-dir", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == f"error: models directory not found: {tmp_path / 'nowhere'}\n"
    assert cli_main(["export", "--format", "onnx", "--models-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (f"error: {tmp_path} holds no TRM checkpoint to export (expected memory/, "
                                       f"tool/ or reasoning/)\n")
    with pytest.raises(SystemExit) as exit_:
        cli_main(["export", "--format", "tflite"])
    assert exit_.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


# --- int8 ------------------------------------------------------------------------------------------------------
def test_int8_runs_and_its_change_in_quality_is_reported(residual_brain, tiny_brain):
    result = compare_backends(residual_brain, tiny_brain["data"], backends=("torch", "onnx-int8"), split="test")
    lines = []
    for kind in KINDS:
        before, after = result[kind]["torch"]["metrics"], result[kind]["onnx-int8"]["metrics"]
        assert before.keys() == after.keys() and before["n"] == after["n"]
        for name in before.keys() - {"n"}:
            if before[name] is not None:
                assert 0.0 <= after[name] <= 1.0
                lines.append(f"{kind} {name}: torch {before[name]:.3f}, int8 {after[name]:.3f} "
                             f"({after[name] - before[name]:+.3f}, n={before['n']})")
        run = result[kind]["onnx-int8"]
        lines.append(f"{kind}: int8 same top-1 {run['same_top1']:.2f}, largest probability change "
                     f"{run['max_abs_diff']:.4f}")
        assert 0.0 <= run["same_top1"] <= 1.0 and run["max_abs_diff"] < 1.0
    print("\nint8 vs torch on the tiny brain's test split:\n  " + "\n  ".join(lines))
