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

import gc
import hashlib
import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dexter_brain import __version__
from dexter_brain.corpora.memory import MemoryMining
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.corpora.schema import SPLITS, CorpusSettings
from dexter_brain.corpora.split import (
    assign_splits, check_contamination, groups_with_tools, keys_of, reserved_tools, split_counts,
)
from dexter_brain.corpora.tool import mine_tools
from dexter_brain.corpora.workers import RowFiller, SharedArrays, default_workers
from dexter_brain.features import tensorize as T
from dexter_brain.features.common import Encoder, fact_text, step_text, tool_text
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer
from dexter_brain.io import sha256_file, write_json, write_jsonl, write_safetensors
from dexter_brain.raw import RawStore
from dexter_brain.vocab import Vocabulary

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
CONVERSATION_ORIGINS = ("memory_refs", "inherited", "no_refs")
MAX_QUERY_LEN = 48
MAX_CANDIDATE_LEN = 32
KINDS = ("memory", "tool", "reasoning")


def _hash(paths: tuple[Path, ...], written: dict[Path, str]) -> str:
    """sha256 over the files' own sha256s; ``written`` holds those of the files this run wrote."""
    h = hashlib.sha256()
    for p in paths:
        if p.exists():
            h.update((written.get(p) or sha256_file(p)).encode())
    return h.hexdigest()


def _rows(examples):
    return (e.model_dump(mode="json") for e in examples)


def generate_corpora(raw_dir: str | Path, out_dir: str | Path, settings: CorpusSettings = CorpusSettings(),
                     *, show_progress_bar: bool | None = None, workers: int | None = None) -> dict:
    """Mine ``raw_dir`` into ``out_dir`` and return the manifest.

    Args:
        raw_dir: A raw directory (any subset of the four sources); never written to.
        out_dir: Where the corpora go (created; files inside are replaced atomically).
        settings: Split fractions, seed, vocabulary size and mining choices.
        show_progress_bar: Show a bar over the stages; None means on when logging shows INFO.
        workers: Processes that compute the training tensors (forked; the output does not depend on it);
            None means one per available CPU, at most 2.

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
    if workers is None:
        workers = default_workers()
    with _collector_paused():
        manifest = _generate(Path(raw_dir), out, settings, show_progress_bar, workers)
    logger.info("corpora written to %s in %.1f s", out, time.perf_counter() - start)
    return manifest


@contextmanager
def _collector_paused():
    """Run without the cyclic garbage collector: a run allocates millions of records that live to the end,
    and every collection would walk them all (a third of the time spent reading a large raw directory).
    Reference counting still frees everything that is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(raw_dir: Path, out: Path, settings: CorpusSettings, show_progress_bar: bool, workers: int) -> dict:
    """The stages overlap so that ``workers`` processes always have rows to fill: the memory examples' hard
    negatives are found while this process mines the tools and plans; the tool and plan tensors are filled
    while it builds the memory featurizer; all the tensors while it writes the JSONL, the featurizer
    states and the vocabulary."""
    bar = tqdm(total=6, desc="corpora", disable=not show_progress_bar, unit="stage")
    store = RawStore.load(raw_dir, show_progress_bar=False)
    sources = _SourceSummary.of(store)
    bar.update()

    corpora, unscored, by_split, featurizers = {}, {}, {}, {}
    with ExitStack() as fillers:
        mining = MemoryMining(store, settings)
        with RowFiller([mining], workers) as resolving:
            catalogue, tools = mine_tools(store)
            reasoning = mine_reasoning(store)
            del store  # everything is mined or drafted: free the raw records before the tensors are built
            reserved = reserved_tools(catalogue, tools, settings.reserved_tool_fraction, settings.seed)
            forced = groups_with_tools(tools, reserved)
            _split_corpus("tool", tools, settings, forced, corpora, unscored, by_split)
            _split_corpus("reasoning", reasoning, settings, forced, corpora, unscored, by_split)
            del tools, reasoning  # the split copies replace the originals
            featurizers["tool"] = _tool_featurizer(catalogue, by_split["tool"]["train"])
            featurizers["reasoning"] = _reasoning_featurizer(by_split["reasoning"]["train"])
            early, steps = _tool_and_reasoning_splits(featurizers, by_split, reserved, settings.seed, workers > 1)
            early_filler = fillers.enter_context(RowFiller(list(early.values()), workers))
            resolving.wait(0)
        bank, memory, entities = mining.finish()
        del mining
        bar.update()

        _split_corpus("memory", memory, settings, forced, corpora, unscored, by_split)
        del memory
        featurizers["memory"] = _memory_featurizer(bank, entities, by_split["memory"]["train"])
        late = _memory_splits(featurizers["memory"], by_split, settings.seed, workers > 1)
        late_filler = fillers.enter_context(RowFiller(list(late.values()), workers))
        bar.update()

        # The workers fill the tensors' rows; meanwhile this process writes everything else.
        write_jsonl(out / "memory" / "bank.jsonl", _rows(bank))
        write_jsonl(out / "tool" / "catalogue.jsonl", _rows(catalogue))
        written: dict[Path, str] = {}  # sha256 of the files the manifest fingerprints, taken as they are written
        for kind in KINDS:
            for split in SPLITS:
                path = out / kind / f"{split}.jsonl"
                written[path] = write_jsonl(path, _rows(by_split[kind][split]))
        for kind in KINDS:
            if featurizers[kind] is not None:
                write_json(out / kind / "featurizer.json", featurizers[kind].to_state())
        texts = _vocab_texts(bank, catalogue, by_split)
        vocab = Vocabulary.train_from_iterator(texts, vocab_size=settings.vocab_size)
        vocab.save(out / "vocab", {"requested_size": settings.vocab_size, "train_sentences": len(texts)})
        del texts
        bar.update()

        encoder = Encoder(vocab, MAX_QUERY_LEN, MAX_CANDIDATE_LEN)
        tensors = out / "tensors"
        if featurizers["memory"] is not None:
            write_safetensors(tensors / "memory_bank.safetensors",
                              {"ids": T.memory_bank_ids(featurizers["memory"], encoder)})
        if featurizers["tool"] is not None:
            write_safetensors(tensors / "tool_bank.safetensors",
                              {"ids": T.tool_catalogue_ids(featurizers["tool"], encoder)})
        for filler, splits in ((early_filler, early), (late_filler, late)):
            for i, (name, split) in enumerate(splits.items()):
                filler.wait(i)
                path = tensors / f"{name}.safetensors"
                written[path] = write_safetensors(path, split.arrays(encoder), split.forget)
                split.release()
        if steps is not None:
            write_safetensors(tensors / "reasoning_bank.safetensors", {"ids": encoder.candidates(steps.texts)})
    bar.update()

    manifest = _manifest(sources, settings, out, corpora, reserved, unscored, vocab, len(bank), len(catalogue),
                         written)
    write_json(out / "manifest.json", manifest)
    bar.update()
    bar.close()
    return manifest


def _split_corpus(kind: str, examples: list, settings: CorpusSettings, forced: set[str], corpora: dict,
                  unscored: dict, by_split: dict) -> None:
    """Assign the splits of one corpus (checked for contamination) into ``corpora``, ``unscored``, ``by_split``."""
    keys = [keys_of(e) for e in examples]
    corpora[kind], unscored[kind] = assign_splits(examples, settings.seed, settings.split_fractions, forced,
                                                  keys=keys)
    check_contamination(corpora[kind], kind, keys=keys)
    by_split[kind] = {s: [e for e in corpora[kind] if e.split == s] for s in SPLITS}


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


def _memory_featurizer(bank, entities, train) -> MemoryFeaturizer | None:
    if not bank:
        return None
    past = [(e.episode, e.query, list(e.positives)) for e in train
            if e.positives and e.origin in ("memory_refs", "inherited")]
    return MemoryFeaturizer([f.model_dump(mode="json") for f in bank], entities, past)


def _tool_featurizer(catalogue, train) -> ToolFeaturizer | None:
    if not catalogue:
        return None
    logged = [dict(episode=e.episode, task=e.task, context=e.context, tool=e.tool, status=e.status,
                   previous_tool=e.previous_tool) for e in train]
    return ToolFeaturizer([t.model_dump(mode="json") for t in catalogue], logged)


def _reasoning_featurizer(train) -> ReasoningFeaturizer | None:
    plans = [dict(id=e.plan_id, group=e.group, goal=e.goal, steps=list(e.steps)) for e in train if e.kind == "plan"]
    return ReasoningFeaturizer(plans) if plans else None


def _allocator(is_shared: bool):
    return SharedArrays() if is_shared else T.allocate


def _memory_splits(mem: MemoryFeaturizer | None, by_split, seed, is_shared: bool) -> dict:
    """The non-empty memory splits to tensorize, by output name, allocated (in shared memory when workers
    fill them)."""
    splits = {}
    if mem is not None:
        mem.view("")  # builds the lazy index here, once, rather than in every worker
        mem.recency()
        for split, examples in by_split["memory"].items():
            if examples:
                splits[f"memory_{split}"] = T.MemorySplit(examples, mem, seed, alloc=_allocator(is_shared))
    return splits


def _tool_and_reasoning_splits(featurizers, by_split, reserved, seed, is_shared: bool
                               ) -> tuple[dict, T.StepBank | None]:
    """The non-empty tool and reasoning splits to tensorize, and the step bank the reasoning candidates
    index (None without a reasoning featurizer)."""
    splits: dict = {}
    tool, reason = featurizers["tool"], featurizers["reasoning"]
    if tool is not None:
        tool.view("")  # builds the lazy indexes here, once, rather than in every worker
        tool.tool_index.idf("")
        for split, examples in by_split["tool"].items():
            if examples:
                splits[f"tool_{split}"] = T.ToolSplit(examples, tool, reserved, seed, alloc=_allocator(is_shared))
    steps = None
    if reason is not None:
        reason.neighbours("")
        steps = T.StepBank()
        for split, examples in by_split["reasoning"].items():
            if examples:
                splits[f"reasoning_{split}"] = T.ReasoningSplit(
                    examples, reason, steps, exclude_own_group=split == "train", alloc=_allocator(is_shared))
    return splits, steps


@dataclass(frozen=True)
class _SourceSummary:
    """What the manifest needs from the raw store, kept so the store itself can be freed early."""

    root: Path
    report: object
    empty_reasons: dict[str, str | None]

    @classmethod
    def of(cls, store: RawStore) -> _SourceSummary:
        return cls(root=store.root, report=store.report,
                   empty_reasons={kind: _empty_reason(kind, store) for kind in KINDS})


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


def _manifest(store: _SourceSummary, settings, out, corpora, reserved, unscored, vocab, n_facts, n_tools,
              written: dict[Path, str]):
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
            "sha256": {s: _hash((out / kind / f"{s}.jsonl", out / "tensors" / f"{kind}_{s}.safetensors"), written)
                       for s in SPLITS},
            "unscored_duplicates": unscored[kind],
            "total": len(examples),
        }
        reason = store.empty_reasons[kind] if not examples else None
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
