"""Raw directory -> the three corpora, the unified vocabulary, the featurizer states and training tensors.

Output layout (everything written atomically; the same inputs and seed give byte-identical files)::

    manifest.json                     sources, settings, counts, fingerprints, reserved tools
    memory/bank.jsonl                 every stored fact (id, text, source, entity, ...)
    memory/{train,val,test}.jsonl     examples;  tool/... and reasoning/... likewise
    tool/catalogue.jsonl
    {memory,tool,reasoning}/featurizer.json   what the wrappers need to rebuild the inputs
    vocab/tokenizer.model, vocab/vocab.json
    tensors/{kind}_{split}.safetensors, tensors/{kind}_bank.safetensors
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save as save_arrays
from tqdm.auto import tqdm

from dexter_brain import __version__
from dexter_brain.corpora.memory import mine_memory
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.corpora.schema import SPLITS, CorpusSettings
from dexter_brain.corpora.split import (
    assign_splits, check_contamination, groups_with_tools, keys_of, reserved_tools, split_counts,
)
from dexter_brain.corpora.tool import mine_tools
from dexter_brain.features import tensorize as T
from dexter_brain.features.common import Encoder, fact_text, step_text, tool_text
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer
from dexter_brain.io import atomic_write_bytes, sha256_file, write_json, write_jsonl
from dexter_brain.raw import RawStore
from dexter_brain.vocab import Vocabulary

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
CONVERSATION_ORIGINS = ("memory_refs", "inherited", "no_refs")
MAX_QUERY_LEN = 48
MAX_CANDIDATE_LEN = 32
KINDS = ("memory", "tool", "reasoning")


def _hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update(sha256_file(p).encode())
    return h.hexdigest()


def _rows(examples) -> list[dict]:
    return [e.model_dump(mode="json") for e in examples]


def generate_corpora(raw_dir: str | Path, out_dir: str | Path, settings: CorpusSettings = CorpusSettings(),
                     *, show_progress_bar: bool | None = None) -> dict:
    """Mine ``raw_dir`` into ``out_dir`` and return the manifest.

    Args:
        raw_dir: A raw directory (any subset of the four sources); never written to.
        out_dir: Where the corpora go (created; files inside are replaced atomically).
        settings: Split fractions, seed, vocabulary size and mining choices.
        show_progress_bar: Show a bar over the stages; None means on when logging shows INFO.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        RawStoreError: The raw directory holds nothing usable.
        ContaminationError: A val/test query also appears in train (cannot happen unless the split
            logic is broken; checked on every run).
    """
    start = time.perf_counter()
    out = Path(out_dir)
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    bar = tqdm(total=6, desc="corpora", disable=not show_progress_bar, unit="stage")

    store = RawStore.load(raw_dir, show_progress_bar=False)
    bar.update()
    bank, memory, entities = mine_memory(store, settings)
    catalogue, tools = mine_tools(store)
    reasoning = mine_reasoning(store)
    bar.update()

    reserved = reserved_tools(catalogue, tools, settings.reserved_tool_fraction, settings.seed)
    forced = groups_with_tools(tools, reserved)
    corpora = {}
    unscored = {}
    for kind, examples in (("memory", memory), ("tool", tools), ("reasoning", reasoning)):
        keys = [keys_of(e) for e in examples]
        corpora[kind], unscored[kind] = assign_splits(examples, settings.seed, settings.split_fractions, forced,
                                                      keys=keys)
        check_contamination(corpora[kind], kind, keys=keys)
    by_split = {k: {s: [e for e in corpora[k] if e.split == s] for s in SPLITS} for k in KINDS}
    bar.update()

    write_jsonl(out / "memory" / "bank.jsonl", _rows(bank))
    write_jsonl(out / "tool" / "catalogue.jsonl", _rows(catalogue))
    for kind in KINDS:
        for split in SPLITS:
            write_jsonl(out / kind / f"{split}.jsonl", _rows(by_split[kind][split]))

    texts = _vocab_texts(bank, catalogue, by_split)
    vocab = Vocabulary.train_from_iterator(texts, vocab_size=settings.vocab_size)
    vocab.save(out / "vocab", {"requested_size": settings.vocab_size, "train_sentences": len(texts)})
    bar.update()

    featurizers = _featurizers(bank, entities, catalogue, by_split)
    for kind, feat in featurizers.items():
        if feat is not None:
            write_json(out / kind / "featurizer.json", feat.to_state())
    encoder = Encoder(vocab, MAX_QUERY_LEN, MAX_CANDIDATE_LEN)
    tensors = _tensorize(featurizers, encoder, by_split, reserved, settings.seed)
    for name, arrays in tensors.items():
        atomic_write_bytes(out / "tensors" / f"{name}.safetensors", save_arrays(arrays))
    bar.update()

    manifest = _manifest(store, settings, out, corpora, reserved, unscored, vocab, len(bank), len(catalogue))
    write_json(out / "manifest.json", manifest)
    logger.info("corpora written to %s in %.1f s", out, time.perf_counter() - start)
    bar.update()
    bar.close()
    return manifest


def _vocab_texts(bank, catalogue, by_split) -> list[str]:
    texts = [fact_text(f.text) for f in bank]
    texts += [tool_text(t.name, t.description) for t in catalogue]
    for e in by_split["memory"]["train"]:
        texts.append(e.query)
    for e in by_split["tool"]["train"]:
        texts.append(f"{e.task} {e.context} {e.previous_error or ''}".strip())
    for e in by_split["reasoning"]["train"]:
        if e.kind == "plan":
            texts.append(e.goal)
            texts.extend(step_text(s) for s in e.steps)
    return texts


def _featurizers(bank, entities, catalogue, by_split) -> dict:
    train = {k: by_split[k]["train"] for k in KINDS}
    memory = None
    if bank:
        past = [(e.episode, e.query, list(e.positives)) for e in train["memory"]
                if e.positives and e.origin in ("memory_refs", "inherited")]
        memory = MemoryFeaturizer([f.model_dump(mode="json") for f in bank], entities, past)
    tool = None
    if catalogue:
        logged = [dict(episode=e.episode, task=e.task, context=e.context, tool=e.tool, status=e.status,
                       previous_tool=e.previous_tool) for e in train["tool"]]
        tool = ToolFeaturizer([t.model_dump(mode="json") for t in catalogue], logged)
    plans = [dict(id=e.plan_id, group=e.group, goal=e.goal, steps=list(e.steps))
             for e in train["reasoning"] if e.kind == "plan"]
    reasoning = ReasoningFeaturizer(plans) if plans else None
    return {"memory": memory, "tool": tool, "reasoning": reasoning}


def _tensorize(featurizers, encoder, by_split, reserved, seed) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    mem, tool, reason = featurizers["memory"], featurizers["tool"], featurizers["reasoning"]
    if mem is not None:
        out["memory_bank"] = {"ids": T.memory_bank_ids(mem, encoder)}
        for split, examples in by_split["memory"].items():
            if examples:
                out[f"memory_{split}"] = T.tensorize_memory(examples, mem, encoder, seed)
    if tool is not None:
        out["tool_bank"] = {"ids": T.tool_catalogue_ids(tool, encoder)}
        for split, examples in by_split["tool"].items():
            if examples:
                out[f"tool_{split}"] = T.tensorize_tool(examples, tool, encoder, reserved, seed)
    if reason is not None:
        steps = T.StepBank()
        for split, examples in by_split["reasoning"].items():
            if examples:
                out[f"reasoning_{split}"] = T.tensorize_reasoning(
                    examples, reason, encoder, steps, exclude_own_group=split == "train")
        out["reasoning_bank"] = {"ids": encoder.candidates(steps.texts)}
    return out


def _empty_reason(kind: str, store: RawStore) -> str | None:
    if kind == "memory":
        if not store.facts:
            return "no facts (d2_memory.json facts or brain.db facts)"
        return None
    if kind == "tool":
        return "no tool calls with a task (training_data_fast.jsonl or art_*.json)" if not any(
            c.task for c in store.tool_calls) else None
    return "no plans (brain.db patterns or summaries with goal and steps)" if not (
        store.patterns or any(s.goal and s.steps for s in store.summaries)) else None


def _manifest(store, settings, out, corpora, reserved, unscored, vocab, n_facts, n_tools):
    sources = {}
    for name in sorted(p.name for p in store.root.iterdir() if p.is_file()):
        if name in ("d2_memory.json", "brain.db", "training_data_fast.jsonl") or (
                name.startswith("art_") and name.endswith(".json")):
            sources[name] = sha256_file(store.root / name)
    corp = {}
    for kind in KINDS:
        examples = corpora[kind]
        entry = {
            "splits": split_counts(examples),
            "sha256": {s: _hash(out / kind / f"{s}.jsonl", out / "tensors" / f"{kind}_{s}.safetensors")
                       for s in SPLITS},
            "unscored_duplicates": unscored[kind],
            "total": len(examples),
        }
        reason = _empty_reason(kind, store) if not examples else None
        if not examples:
            entry["empty_reason"] = reason or "nothing in the raw data could be mined into this corpus"
        corp[kind] = entry
    mem = corpora["memory"]
    corp["memory"]["facts"] = n_facts
    # Follow-ups are counted among conversation turns; questions generated from the bank have no turns.
    turns = [e for e in mem if e.origin in CONVERSATION_ORIGINS]
    corp["memory"]["conversation_turns"] = len(turns)
    corp["memory"]["followup_fraction"] = round(sum(e.is_followup for e in turns) / max(len(turns), 1), 4)
    corp["memory"]["followup_fraction_all"] = round(sum(e.is_followup for e in mem) / max(len(mem), 1), 4)
    corp["memory"]["origins"] = _count(e.origin for e in mem)
    tools = corpora["tool"]
    corp["tool"]["tools"] = n_tools
    corp["tool"]["reserved_tools"] = list(reserved)
    corp["tool"]["correction_fraction"] = round(sum(e.is_correction for e in tools) / max(len(tools), 1), 4)
    corp["tool"]["errors"] = sum(e.status == "error" for e in tools)
    reasoning = corpora["reasoning"]
    corp["reasoning"]["plans"] = sum(e.kind == "plan" for e in reasoning)
    corp["reasoning"]["complexity"] = _count(e.complexity for e in reasoning if e.kind == "plan")
    fingerprint = hashlib.sha256("".join(
        corp[k]["sha256"][s] for k in KINDS for s in SPLITS).encode()).hexdigest()
    return {
        "version": MANIFEST_VERSION,
        "package_version": __version__,
        "sources": sources,
        "ingest": {"read": dict(sorted(store.report.read.items())),
                   "skipped": dict(sorted(store.report.skipped.items())),
                   "problems": len(store.report.problems)},
        "settings": settings.model_dump(mode="json"),
        "lengths": {"max_query_len": MAX_QUERY_LEN, "max_candidate_len": MAX_CANDIDATE_LEN},
        "vocab": {"vocab_size": vocab.vocab_size, "sha256": sha256_file(out / "vocab" / "tokenizer.model")},
        "corpora": corp,
        "fingerprint": fingerprint,
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
