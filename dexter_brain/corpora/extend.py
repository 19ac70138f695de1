"""A corpus extended with what users did with the brain: the base corpus plus the examples mined from a
feedback directory (``dexter_brain.feedback``), written as a complete corpus directory that ``train_trm`` and the
evaluation read like any other.

- The feedback directory is a raw directory: the same ``RawStore`` readers and miners as a build read it.
  Memory examples come from its conversations only (the questions a build generates from the bank are in the
  base corpus already); tool calls that do not say which tools were offered had the whole catalogue.
- New examples are renamed ``feedback:<id>`` (episode and group too), so that they never merge with a base
  conversation of the same id. A stable hash of their group holds ``NEW_VAL_FRACTION`` of them back as
  validation (``corpora.split``); the rest are added to the training split, so the featurizers' history
  (past queries that used a fact, logged tool calls, stored plans) includes them. The test split is the base's.
- A val/test example whose text is already in the (new) training split is unscored, as in a build.
- The bank gains the facts the feedback copied that the base lacks, the catalogue the tools it named.
- The vocabulary is the base's, copied: new words go through the tokenizer as any unseen text does. Only the
  tensors stage runs (every kind's inputs and floor, ``tensors_stage``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from dexter_brain.corpora.build import (
    CONVERSATION_ORIGINS, KINDS, _corpora_summary, _SourceSummary, raw_sources, tensors_stage, write_corpora,
)
from dexter_brain.corpora.memory import mine_memory
from dexter_brain.corpora.reasoning import mine_reasoning
from dexter_brain.corpora.split import assign_splits, check_contamination, keys_of, unscore_seen
from dexter_brain.corpora.tool import mine_tools
from dexter_brain.entities import EntityIndex
from dexter_brain.io import read_json, read_jsonl, write_json
from dexter_brain.raw import RawStore
from dexter_brain.schema import EXAMPLES, SPLITS, CorpusSettings, FactRow, ToolEntry

logger = logging.getLogger(__name__)

FEEDBACK_PREFIX = "feedback:"
NEW_VAL_FRACTION = 0.2
"""Share of the new examples' groups (conversations, plan goals) held back as validation."""
def is_new(example_id: str) -> bool:
    """Whether a corpus example came from the feedback directory."""
    return example_id.startswith(FEEDBACK_PREFIX)


def mine_feedback(feedback_dir: Path, settings: CorpusSettings, known_tools: tuple[str, ...] = ()
                  ) -> tuple[RawStore, list[FactRow], list[ToolEntry], dict[str, list]]:
    """(store, facts, catalogue, examples per kind) of a feedback directory, the examples renamed and split into
    train and val. Raises ``RawStoreError`` when it holds nothing usable."""
    store = RawStore.load(feedback_dir, show_progress_bar=False)
    facts, memory, _ = mine_memory(store, settings)
    memory = [e for e in memory if e.origin in CONVERSATION_ORIGINS]
    catalogue, tools = mine_tools(store, known_tools=known_tools)
    reasoning = mine_reasoning(store)
    fractions = (1.0 - NEW_VAL_FRACTION, NEW_VAL_FRACTION, 0.0)
    examples = {}
    for kind, mined in (("memory", memory), ("tool", tools), ("reasoning", reasoning)):
        renamed = [e.model_copy(update={k: FEEDBACK_PREFIX + getattr(e, k) for k in ("id", "episode", "group")})
                   for e in mined]
        examples[kind], _ = assign_splits(renamed, settings.seed, fractions)
    return store, facts, catalogue, examples


def extend_corpus(base_dir: str | Path, feedback_dir: str | Path, out_dir: str | Path) -> dict:
    """Write ``out_dir``: the corpus of ``base_dir`` plus the examples of ``feedback_dir`` (see the module doc).

    Args:
        base_dir: A corpus directory (``generate_corpora``): its splits, bank, catalogue, vocabulary, settings.
        feedback_dir: A feedback directory (any raw directory works).
        out_dir: Where the extended corpus goes (created; must not hold another corpus).

    Returns:
        ``new``: per kind, the new examples per split (``{"train": n, "val": n}``) and ``sha256`` (a digest of
        them); ``facts_added``, ``tools_added``; ``manifest`` (the extended corpus's).

    Raises:
        RawStoreError: The feedback directory holds nothing usable.
        ContaminationError: Cannot happen unless the split logic is broken (checked).
    """
    base, out = Path(base_dir), Path(out_dir)
    base_summary = read_json(base / "corpora.json")
    settings = CorpusSettings(**base_summary["settings"])
    base_catalogue = [ToolEntry.model_validate(t) for t in read_jsonl(base / "tool" / "catalogue.jsonl")]
    store, facts, catalogue, new = mine_feedback(Path(feedback_dir), settings,
                                                 tuple(t.name for t in base_catalogue))
    bank = [FactRow.model_validate(f) for f in read_jsonl(base / "memory" / "bank.jsonl")]
    known = {f.id for f in bank}
    added_facts = [f for f in facts if f.id not in known]
    bank += added_facts
    entities = _entities(base, added_facts)
    catalogue, added_tools = _merge_catalogues(base_catalogue, catalogue)
    corpora, unscored, by_split = {}, {}, {}
    for kind in KINDS:
        rows = [EXAMPLES[kind].model_validate(r) for s in SPLITS for r in read_jsonl(base / kind / f"{s}.jsonl")]
        keys = [keys_of(e) for e in rows + new[kind]]
        corpora[kind], _ = unscore_seen(rows + new[kind], keys=keys)
        check_contamination(corpora[kind], kind, keys=keys)
        unscored[kind] = sum(not e.scored for e in corpora[kind] if e.split != "train")
        by_split[kind] = {s: [e for e in corpora[kind] if e.split == s] for s in SPLITS}
    out.mkdir(parents=True, exist_ok=True)
    written = write_corpora(out, bank, entities, catalogue, by_split)
    sources = _SourceSummary(report=store.report,
                             empty_reasons={k: base_summary["corpora"][k].get("empty_reason") for k in KINDS})
    reserved = tuple(base_summary["corpora"]["tool"]["reserved_tools"])
    files = {**base_summary["sources"],
             **{f"feedback/{name}": sha for name, sha in raw_sources(Path(feedback_dir)).items()}}
    summary = _corpora_summary(sources, settings, corpora, reserved, unscored, len(bank), len(catalogue), written,
                               files)
    write_json(out / "corpora.json", summary)
    if (out / "vocab").exists():
        shutil.rmtree(out / "vocab")
    shutil.copytree(base / "vocab", out / "vocab")  # the vocabulary is kept: no vocab stage
    manifest = tensors_stage(out, summary, reuse=base)  # a kind the feedback left unchanged keeps its tensors
    info = {"new": {kind: {"train": sum(e.split == "train" for e in new[kind]),
                           "val": sum(e.split == "val" for e in new[kind]), "sha256": _digest(new[kind])}
                    for kind in KINDS},
            "facts_added": len(added_facts), "tools_added": added_tools, "base_fingerprint": _fingerprint(base),
            "feedback_dir": str(feedback_dir)}
    write_json(out / "extended.json", info)
    logger.info("extended corpus in %s: %s", out, ", ".join(f"{k} +{v['train']} train +{v['val']} val"
                                                          for k, v in info["new"].items()))
    return {**info, "manifest": manifest}


def _entities(base: Path, added: list[FactRow]) -> EntityIndex:
    state = read_json(base / "memory" / "featurizer.json") if (base / "memory" / "featurizer.json").is_file() else {}
    entities = EntityIndex.from_json(state["entities"]) if "entities" in state else EntityIndex(())
    for fact in added:
        if fact.entity:
            entities.add(fact.entity)
    return entities


def _merge_catalogues(base: list[ToolEntry], feedback: list[ToolEntry]) -> tuple[list[ToolEntry], list[str]]:
    """The base catalogue with the feedback's calls counted in, a description filled in where it had none, and
    the tools it lacked; returns (catalogue sorted by name, the names added)."""
    merged = {t.name: t for t in base}
    added = []
    for tool in feedback:
        old = merged.get(tool.name)
        if old is None:
            merged[tool.name] = tool
            added.append(tool.name)
            continue
        merged[tool.name] = old.model_copy(update={
            "calls": old.calls + tool.calls, "successes": old.successes + tool.successes,
            "errors": old.errors + tool.errors, "description": old.description or tool.description})
    return [merged[name] for name in sorted(merged)], sorted(added)


def _digest(examples: list) -> str:
    return hashlib.sha256("\n".join(json.dumps(e.model_dump(mode="json"), sort_keys=True)
                                    for e in examples).encode()).hexdigest()


def _fingerprint(corpus: Path) -> str | None:
    manifest = corpus / "manifest.json"
    return read_json(manifest).get("fingerprint") if manifest.is_file() else None
