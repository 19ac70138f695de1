"""Raw directory -> corpora -> vocabulary -> tensors, three stages that each write to disk and resume.

Output layout (every file written atomically; the same inputs and seed give byte-identical files)::

    manifest.json                     sources, settings, counts, fingerprints, reserved tools
    stages.json                       per stage: the fingerprint of its inputs when it finished
    memory/bank.jsonl                 every stored fact (id, text, source, entity, ...)
    memory/{train,val,test}.jsonl     examples;  tool/... and reasoning/... likewise
    tool/catalogue.jsonl
    {memory,tool,reasoning}/featurizer.json   the lexical state the input builders read
    vocab/tokenizer.model, vocab/vocab.json
    tensors/{kind}_{split}.safetensors, tensors/{kind}_bank.safetensors, tensors/{kind}_floor.json

``generate_corpora`` runs the stages in order; a stage whose recorded input fingerprint matches (and whose
outputs are there) is skipped, so a run killed at any point continues from the last finished stage, and a
rerun on unchanged data does nothing. ``corpora`` reads the raw directory (its fingerprint: the raw files'
sha256 and the settings), ``vocab`` the training texts of the corpora, ``tensors`` the corpora and the
vocabulary.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dexter_brain import __version__
from dexter_brain.corpora.memory import mine_memory
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.corpora.split import assign_splits, check_contamination, keys_of, reserved_tools, split_counts
from dexter_brain.corpora.tool import mine_tools
from dexter_brain.features.common import Encoder, fact_text, step_text, tool_text
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer
from dexter_brain.io import read_json, read_jsonl, sha256_file, write_json, write_jsonl
from dexter_brain.raw import RawStore
from dexter_brain.raw.report import is_raw_file
from dexter_brain.schema import SPLITS, CorpusSettings
from dexter_brain.vocab import Vocabulary

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 2
CONVERSATION_ORIGINS = ("memory_refs", "inherited", "no_refs")
MAX_QUERY_LEN = 48
MAX_CANDIDATE_LEN = 32
KINDS = ("memory", "tool", "reasoning")
STAGES = ("corpora", "vocab", "tensors")


def _rows(examples):
    return (e.model_dump(mode="json") for e in examples)


def _digest(*parts: object) -> str:
    return hashlib.sha256("\n".join(map(str, parts)).encode()).hexdigest()


def raw_sources(raw_dir: Path) -> dict[str, str]:
    """sha256 of every raw file the readers use (name -> hash)."""
    if not raw_dir.is_dir():
        return {}
    return {p.name: sha256_file(p) for p in sorted(raw_dir.iterdir())
            if p.is_file() and is_raw_file(p.name)}


class StageRecord:
    """``stages.json``: the input fingerprint each stage finished with."""

    def __init__(self, out: Path):
        self.path = out / "stages.json"
        self.done: dict[str, str] = read_json(self.path) if self.path.is_file() else {}

    def is_current(self, stage: str, key: str) -> bool:
        return self.done.get(stage) == key

    def finish(self, stage: str, key: str) -> None:
        # A finished stage makes every later stage stale until it runs again.
        later = STAGES[STAGES.index(stage) + 1:]
        self.done = {s: k for s, k in self.done.items() if s not in later}
        self.done[stage] = key
        write_json(self.path, self.done)


def generate_corpora(raw_dir: str | Path, out_dir: str | Path, settings: CorpusSettings = CorpusSettings(),
                     *, show_progress_bar: bool | None = None) -> dict:
    """Mine ``raw_dir`` into ``out_dir`` (corpora, vocabulary, tensors) and return the manifest.

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
    raw_dir, out = Path(raw_dir), Path(out_dir)
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    out.mkdir(parents=True, exist_ok=True)
    record = StageRecord(out)
    manifest = None
    bar = tqdm(total=len(STAGES), desc="corpora", disable=not show_progress_bar, unit="stage")
    try:
        files = raw_sources(raw_dir)
        key = _digest(__version__, MANIFEST_VERSION, settings.model_dump_json(), sorted(files.items()))
        if not (record.is_current("corpora", key) and (out / "corpora.json").is_file()):
            mine_stage(raw_dir, out, settings, files)
            record.finish("corpora", key)
        bar.update()
        corpora = read_json(out / "corpora.json")
        key = _digest(key, corpora["fingerprint"])
        if not (record.is_current("vocab", key) and (out / "vocab" / "tokenizer.model").is_file()):
            vocab_stage(out, settings)
            record.finish("vocab", key)
        bar.update()
        key = _digest(key, sha256_file(out / "vocab" / "tokenizer.model"))
        if not (record.is_current("tensors", key) and (out / "manifest.json").is_file()):
            manifest = tensors_stage(out, corpora)
            record.finish("tensors", key)
        bar.update()
    finally:
        bar.close()
    logger.info("corpora written to %s in %.1f s", out, time.perf_counter() - start)
    return manifest if manifest is not None else read_json(out / "manifest.json")


# --- stage 1: corpora ----------------------------------------------------------------------------------
def mine_stage(raw_dir: Path, out: Path, settings: CorpusSettings, files: dict[str, str]) -> dict:
    """Read the raw directory, mine and split the three corpora, and write them with the featurizer states
    and ``corpora.json`` (what the manifest says of them; ``files``: the raw files' sha256, ``raw_sources``)."""
    store = RawStore.load(raw_dir, show_progress_bar=False)
    sources = _SourceSummary.of(store)
    bank, memory, entities = mine_memory(store, settings)
    catalogue, tools = mine_tools(store)
    reasoning = mine_reasoning(store)
    del store  # everything is mined: free the raw records
    reserved = reserved_tools(catalogue, tools, settings.reserved_tool_fraction, settings.seed)
    corpora, unscored, by_split = {}, {}, {}
    for kind, examples in (("memory", memory), ("tool", tools), ("reasoning", reasoning)):
        _split_corpus(kind, examples, settings, corpora, unscored, by_split)
    written = write_corpora(out, bank, entities, catalogue, by_split)
    summary = _corpora_summary(sources, settings, corpora, reserved, unscored, len(bank), len(catalogue), written,
                               files)
    write_json(out / "corpora.json", summary)
    return summary


def write_corpora(out: Path, bank: list, entities, catalogue: list, by_split: dict[str, dict[str, list]]
                  ) -> dict[str, str]:
    """Write the bank, the catalogue, every split of the three corpora and the featurizer states built from the
    training splits (past queries, logged calls, stored plans) into ``out``; returns each split file's sha256
    (``"kind/split"`` -> hex)."""
    write_jsonl(out / "memory" / "bank.jsonl", _rows(bank))
    write_jsonl(out / "tool" / "catalogue.jsonl", _rows(catalogue))
    written: dict[str, str] = {}
    for kind in KINDS:
        for split in SPLITS:
            written[f"{kind}/{split}"] = write_jsonl(out / kind / f"{split}.jsonl", _rows(by_split[kind][split]))
    featurizers = {"memory": _memory_featurizer(bank, entities, by_split["memory"]["train"]),
                   "tool": _tool_featurizer(catalogue, by_split["tool"]["train"]),
                   "reasoning": _reasoning_featurizer(by_split["reasoning"]["train"])}
    for kind, featurizer in featurizers.items():
        path = out / kind / "featurizer.json"
        if featurizer is not None:
            write_json(path, featurizer.to_state())
        else:
            path.unlink(missing_ok=True)
    return written


def _split_corpus(kind: str, examples: list, settings: CorpusSettings, corpora: dict, unscored: dict,
                  by_split: dict) -> None:
    """Assign the splits of one corpus (checked for contamination) into ``corpora``, ``unscored``, ``by_split``."""
    keys = [keys_of(e) for e in examples]
    corpora[kind], unscored[kind] = assign_splits(examples, settings.seed, settings.split_fractions, keys=keys)
    check_contamination(corpora[kind], kind, keys=keys)
    by_split[kind] = {s: [e for e in corpora[kind] if e.split == s] for s in SPLITS}


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


# --- stage 2: vocabulary ---------------------------------------------------------------------------------
def vocab_stage(out: Path, settings: CorpusSettings) -> Vocabulary:
    """One sentencepiece vocabulary over the bank, the catalogue and the training split's texts."""
    texts = [fact_text(f["text"]) for f in read_jsonl(out / "memory" / "bank.jsonl")]
    texts += [tool_text(t["name"], t.get("description")) for t in read_jsonl(out / "tool" / "catalogue.jsonl")]
    texts += [e["query"] for e in read_jsonl(out / "memory" / "train.jsonl")]
    texts += [f"{e['task']} {e['context']} {e.get('previous_error') or ''}".strip()
              for e in read_jsonl(out / "tool" / "train.jsonl")]
    for e in read_jsonl(out / "reasoning" / "train.jsonl"):
        if e["kind"] == "plan":
            texts.append(e["goal"])
            texts.extend(step_text(s) for s in e["steps"])
    vocab = Vocabulary.train_from_iterator(texts, vocab_size=settings.vocab_size)
    vocab.save(out / "vocab", {"requested_size": settings.vocab_size, "train_sentences": len(texts)})
    return vocab


# --- stage 3: tensors ------------------------------------------------------------------------------------
def tensors_stage(out: Path, corpora: dict, reuse: Path | None = None) -> dict:
    """Model inputs and linear floors of every non-empty corpus (``dexter_brain.tensorize``), then the manifest.

    ``reuse``: another corpus directory whose tensors of a kind are copied instead of computed when that kind's
    inputs there are byte-identical (its split files, featurizer state and vocabulary; the bank and catalogue
    for memory and tool), as they are for a kind the feedback added nothing to (``corpora.extend``)."""
    from dexter_brain import tensorize

    vocab = Vocabulary.from_file(out / "vocab" / "tokenizer.model")
    encoder = Encoder(vocab, MAX_QUERY_LEN, MAX_CANDIDATE_LEN)
    tensors_dir = out / "tensors"
    for stale in tensors_dir.glob("*") if tensors_dir.is_dir() else ():
        stale.unlink()  # a corpus that became empty leaves no old tensors behind
    written: dict[Path, str] = {}
    splits = {k: corpora["corpora"][k]["splits"] for k in KINDS}
    make = {"memory": lambda: tensorize.tensorize_memory(out, encoder),
            "tool": lambda: tensorize.tensorize_tool(out, encoder, tuple(corpora["corpora"]["tool"]["reserved_tools"])),
            "reasoning": lambda: tensorize.tensorize_reasoning(out, encoder)}
    for kind in KINDS:
        if not (splits[kind]["train"] and (out / kind / "featurizer.json").is_file()):
            continue
        if reuse is not None and _same_inputs(reuse, out, kind):
            written.update(_copy_tensors(reuse, out, kind))
        else:
            written.update(make[kind]())
    manifest = _manifest(corpora, out, vocab, written)
    write_json(out / "manifest.json", manifest)
    return manifest


_INPUTS = {"memory": ("memory/bank.jsonl",), "tool": ("tool/catalogue.jsonl",), "reasoning": ()}
"""What a kind's tensors read besides its splits, its featurizer state and the vocabulary."""


def _same_inputs(a: Path, b: Path, kind: str) -> bool:
    names = [f"{kind}/{s}.jsonl" for s in SPLITS] + [f"{kind}/featurizer.json", "vocab/tokenizer.model",
                                                     *_INPUTS[kind]]
    return all((a / n).is_file() and (b / n).is_file() and sha256_file(a / n) == sha256_file(b / n) for n in names)


def _copy_tensors(source: Path, out: Path, kind: str) -> dict[Path, str]:
    import shutil

    written = {}
    (out / "tensors").mkdir(parents=True, exist_ok=True)
    for path in sorted((source / "tensors").glob(f"{kind}_*")):
        shutil.copyfile(path, out / "tensors" / path.name)
        if path.suffix == ".safetensors" and path.stem.split("_", 1)[1] in SPLITS:
            written[out / "tensors" / path.name] = sha256_file(path)
    if kind == "memory" and (source / "memory" / "bank.sqlite").is_file():
        shutil.copyfile(source / "memory" / "bank.sqlite", out / "memory" / "bank.sqlite")
    return written


# --- manifest --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _SourceSummary:
    """What the manifest needs from the raw store, kept so the store itself can be freed early."""

    report: object
    empty_reasons: dict[str, str | None]

    @classmethod
    def of(cls, store: RawStore) -> _SourceSummary:
        return cls(report=store.report,
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


def _corpora_summary(store: _SourceSummary, settings, corpora, reserved, unscored, n_facts, n_tools,
                     written: dict[str, str], files: dict[str, str]) -> dict:
    corp = {}
    for kind in KINDS:
        examples = corpora[kind]
        entry = {"splits": split_counts(examples), "jsonl_sha256": {s: written[f"{kind}/{s}"] for s in SPLITS},
                 "unscored_duplicates": unscored[kind], "total": len(examples)}
        if not examples:
            entry["empty_reason"] = store.empty_reasons[kind] or "nothing in the raw data could be mined into this corpus"
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
    return {
        "sources": dict(files),
        "ingest": {"read": dict(sorted(store.report.read.items())),
                   "skipped": dict(sorted(store.report.skipped.items())),
                   "problems": len(store.report.problems)},
        "settings": settings.model_dump(mode="json"),
        "corpora": corp,
        "fingerprint": _digest(*(corp[k]["jsonl_sha256"][s] for k in KINDS for s in SPLITS)),
    }


def _manifest(corpora: dict, out: Path, vocab: Vocabulary, written: dict[Path, str]) -> dict:
    corp = {k: dict(v) for k, v in corpora["corpora"].items()}
    for kind in KINDS:
        corp[kind]["sha256"] = {s: _digest(corp[kind]["jsonl_sha256"][s],
                                           written.get(out / "tensors" / f"{kind}_{s}.safetensors", ""))
                                for s in SPLITS}
        floor = out / "tensors" / f"{kind}_floor.json"
        if floor.is_file():
            corp[kind]["floor"] = [{k: v for k, v in m.items() if k != "val_metric"} for m in read_json(floor)["info"]]
    return {
        "version": MANIFEST_VERSION,
        "package_version": __version__,
        "sources": corpora["sources"],
        "ingest": corpora["ingest"],
        "settings": corpora["settings"],
        "lengths": {"max_query_len": MAX_QUERY_LEN, "max_candidate_len": MAX_CANDIDATE_LEN},
        "vocab": {"vocab_size": vocab.vocab_size, "sha256": sha256_file(out / "vocab" / "tokenizer.model")},
        "corpora": corp,
        "fingerprint": _digest(*(corp[k]["sha256"][s] for k in KINDS for s in SPLITS)),
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
