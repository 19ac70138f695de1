"""``learn``: fine-tune the brain on what its users did with it, and promote the result only when validation
holds; ``rollback`` puts back the weights a promotion replaced.

One run (``<models_dir>/learn/<run>/``):

1. The feedback directory (default ``<models_dir>/feedback``, written by the wrappers' feedback calls) is mined
   and added to the corpus the brain was built from (``corpora.extend``: the vocabulary kept, a share of the
   new examples held back as validation) into ``<run>/corpus``; its tensors stage refits each kind's floor.
2. Each TRM with new examples (new since the last learn, unless ``force``) is fine-tuned from its current
   ``best/`` (``train_trm(init_from=...)``) on the new training examples plus a replay of the original ones
   (``REPLAY`` original conversations per new one), for a short budget on CPU, into ``<run>/models/<kind>``.
3. The current ``best/`` and the candidate are evaluated through their wrappers on the same rows: the original
   validation split and the new held-out examples (memory on one bank of facts for both). The candidate is
   promoted only when no metric (``evaluation.quality.METRICS``) drops on the validation rows as a whole (by
   more than ``tolerance``) and none is worse on the original validation rows alone, row by row: a candidate
   that fits the new examples by forgetting the old ones is kept out even when the new ones outweigh them.
   "Worse" there is a one-sided sign test over the rows whose score changed (``ALPHA``): a validation split
   of a few dozen rows moves by a row or two from noise alone, and that must not block every promotion.
4. Promotion calibrates the candidate, then ``best/`` becomes ``previous/`` and the candidate ``best/``: whole
   directories renamed, so every checkpoint keeps its sha256 record. A promotion or rollback cut short (a
   crash between renames) is completed or undone by the next ``learn``/``rollback`` (``recover``).
   ``rollback`` swaps ``previous/`` and ``best/``; a second one swaps them again.

The memory bank (``models/memory/bank.sqlite``) is the user's store and is never touched: the evaluation scores
banks of its own, the promoted featurizer (past queries, entities) is read over the same bank as before, and its
vectors are encoded again, once, by the new weights on the next load. A running server keeps the weights it
loaded: restart it to serve the promoted ones. Runs of one models directory exclude each other (a lock file).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dexter_brain.corpora.extend import extend_corpus, is_new
from dexter_brain.evaluation.cost import torch_threads
from dexter_brain.io import append_line, fsync_directory, read_json, read_jsonl, read_rows, write_json

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
LEARN_DIR = "learn"
PREVIOUS = "previous"
HISTORY = "history.jsonl"
LEARNED_FILE = "learned.json"
"""Written into a candidate's ``best/`` (and recorded in its sha256 list): what it was learnt from."""
REPLAY = 3
"""Original training conversations replayed per new one (at least ``MIN_REPLAY``), so that fine-tuning on the
new examples does not forget the old ones."""
MIN_REPLAY = 32
EPOCHS = 3
"""Passes over the fine-tuning rows (new plus replayed), bounded by ``STEP_RANGE``."""
STEP_RANGE = (20, 300)
LR_SCALE = 0.5
"""Fine-tuning runs at this share of the original run's learning rate: it starts from trained weights."""
ALPHA = 0.05
"""The candidate is worse on the original validation when, among the rows whose score changed, the ones that
got worse outnumber the ones that got better by more than chance explains at this level (one-sided sign test)."""
_NEXT, _INCOMING, _TRASH = ".best.next", ".best.incoming", ".previous.trash"


class LearnError(ValueError):
    """``learn`` or ``rollback`` cannot run: no trained brain, no feedback directory, no corpus to start from,
    nothing to roll back, or another run holds the models directory."""


# --- the run --------------------------------------------------------------------------------------------------
def learn(models_dir: str | Path = "models", *, feedback_dir: str | Path | None = None,
          data_dir: str | Path | None = None, seed: int = 0, tolerance: float = 0.0, force: bool = False,
          num_threads: int | None = 1, show_progress_bar: bool | None = None) -> dict:
    """Fine-tune each TRM on the feedback and promote the candidates that do not do worse (module doc).

    Args:
        models_dir: The brain (``memory/``, ``tool/``, ``reasoning/`` with ``best/``).
        feedback_dir: The feedback directory; default ``<models_dir>/feedback``.
        data_dir: The corpus the brain was built from; default the one ``build_state.json`` (or a TRM's
            ``train_config.json``) names.
        seed: Seeds the held-out share of the new examples, the replay sample and the fine-tuning.
        tolerance: How much a metric may drop (absolute) and still count as held.
        force: Learn a kind even when its new examples are those the last learn already used.
        num_threads: CPU threads for torch while learning (None: torch's default). One by default: learning
            runs beside the app, and on a busy machine more threads spin rather than help.
        show_progress_bar: None means on when logging shows INFO.

    Returns:
        ``run_dir``, ``corpus``, ``base_corpus``, ``feedback_dir``, ``seconds``, ``message`` (set when there was
        nothing to learn) and ``kinds``: per kind ``status`` (``promoted``, ``kept`` or ``skipped``), ``reason``,
        ``new`` (new examples per split), and when evaluated ``metrics`` (per metric, ``original`` and ``new``
        parts, each ``before``, ``after``, ``n``), ``steps`` and ``start`` (the fine-tuning run's).

    Raises:
        LearnError: No trained TRM, no feedback directory, no corpus to start from, another learn running.
        CheckpointError: A checkpoint is corrupt, or the corpus's vocabulary is not the brain's (``InitError``).

    Example:
        >>> summary = learn("models")  # doctest: +SKIP
        >>> summary["kinds"]["memory"]["status"], summary["kinds"]["memory"]["metrics"]["recall@5"]  # doctest: +SKIP
    """
    start = time.perf_counter()
    models_dir = Path(models_dir)
    feedback_dir = Path(feedback_dir) if feedback_dir is not None else models_dir / "feedback"
    present = [k for k in KINDS if (models_dir / k / "best").is_dir() or (models_dir / k / _NEXT).is_dir()]
    if not present:
        raise LearnError(f"{models_dir} holds no trained TRM (memory/best, tool/best or reasoning/best): build the "
                         f"brain first (python build_trm_brain.py)")
    if not feedback_dir.is_dir():
        raise LearnError(f"feedback directory not found: {feedback_dir} (the feedback calls write it: "
                         f"MemoryTRM.feedback, ToolTRM.record_outcome, ReasoningTRM.record_outcome, POST /v1/feedback)")
    base = Path(data_dir) if data_dir is not None else base_corpus(models_dir)
    _check_base(base)
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    with _locked(models_dir), torch_threads(num_threads):
        for kind in present:
            recover(models_dir / kind)
        run_dir = _new_run_dir(models_dir / LEARN_DIR)
        summary = {"run_dir": str(run_dir), "corpus": str(run_dir / "corpus"), "base_corpus": str(base),
                   "feedback_dir": str(feedback_dir), "kinds": {}, "message": ""}
        bar = tqdm(total=1 + 2 * len(KINDS), desc="learn", unit="stage", disable=not show_progress_bar)
        try:
            from dexter_brain.raw import RawStoreError

            try:
                extended = extend_corpus(base, feedback_dir, run_dir / "corpus")
            except RawStoreError as exc:
                shutil.rmtree(run_dir, ignore_errors=True)
                summary.update(message=f"nothing to learn: {str(exc).splitlines()[0]}",
                               seconds=round(time.perf_counter() - start, 2))
                summary["kinds"] = {k: {"status": "skipped", "reason": "no feedback", "new": {"train": 0, "val": 0}}
                                    for k in KINDS}
                return summary
            bar.update()
            history = _history(models_dir)
            for kind in KINDS:
                new = {s: extended["new"][kind][s] for s in ("train", "val")}
                reason = _why_skip(models_dir, kind, new, extended["new"][kind]["sha256"], history, force)
                if reason:
                    summary["kinds"][kind] = {"status": "skipped", "reason": reason, "new": new}
                    bar.update(2)
                    continue
                bar.set_postfix_str(f"{kind}: fine-tuning")
                result = _learn_kind(models_dir, kind, run_dir, seed, tolerance, show_progress_bar, bar)
                summary["kinds"][kind] = {**result, "new": new, "sha256": extended["new"][kind]["sha256"]}
        finally:
            bar.close()
        summary["seconds"] = round(time.perf_counter() - start, 2)
        _append_history(models_dir, {"run": run_dir.name, "created_at": _now(), "kinds": {
            k: {key: v.get(key) for key in ("status", "reason", "sha256")} for k, v in summary["kinds"].items()}})
        write_json(run_dir / "learn.json", summary)
        _prune(models_dir / LEARN_DIR, keep=run_dir)
    return summary


def _learn_kind(models_dir: Path, kind: str, run_dir: Path, seed: int, tolerance: float, show: bool, bar) -> dict:
    """Fine-tune, evaluate both, promote or keep; returns the kind's part of the summary."""
    from dexter_brain.checkpoint import write_checkpoint_file
    from dexter_brain.evaluation.calibration import calibrate_brain
    from dexter_brain.runs import train_trm

    corpus, current = run_dir / "corpus", models_dir / kind / "best"
    out = run_dir / "models" / kind
    episodes, rows = _fine_tuning_rows(corpus, kind, seed)
    config = _fine_tuning_config(kind, corpus, out, current, rows, seed)
    trained = train_trm(kind, corpus, out, config=config, init_from=current, train_episodes=episodes, resume=False,
                        show_progress_bar=show)
    bar.update()
    bar.set_postfix_str(f"{kind}: evaluating")
    metrics = compare(kind, current, out / "best", corpus)
    bar.update()
    drops = gate(metrics, tolerance)
    counted = sum(parts["all"]["n"] for parts in metrics.values())
    result = {"metrics": metrics, "steps": trained["steps"], "start": trained["start"]}
    if drops or not counted:
        reason = "; ".join(drops) if drops else "no validation rows to compare on"
        return {**result, "status": "kept", "reason": reason}
    calibrate_brain(run_dir / "models", corpus, kinds=(kind,), show_progress_bar=False, num_threads=None)
    write_checkpoint_file(out / "best", LEARNED_FILE, {
        "run": run_dir.name, "created_at": _now(), "corpus": str(corpus), "metrics": metrics,
        "previous": read_json(current / "meta.json").get("corpus_fingerprint")})
    promote(models_dir / kind, out / "best")
    return {**result, "status": "promoted",
            "reason": "no metric dropped" + (f" (tolerance {tolerance})" if tolerance else "")}


def compare(kind: str, current: Path, candidate: Path, corpus: Path) -> dict:
    """Per metric of ``kind``: the current and the candidate checkpoint on the corpus's validation rows, all of
    them, the original ones and the new ones: ``{"all" | "original" | "new": {"before", "after", "n", "worse",
    "better"}}`` (``worse``/``better``: rows whose score went down/up)."""
    from dexter_brain.evaluation.quality import (
        METRICS,
        load_for_evaluation,
        mean_of,
        row_scores,
    )

    rows = read_rows(corpus, kind, "val")
    facts = read_jsonl(corpus / "memory" / "bank.jsonl") if kind == "memory" else None
    fresh = [is_new(r["id"]) for r in rows]
    with tempfile.TemporaryDirectory(prefix="dexter-learn-") as scratch:
        before = row_scores(kind, load_for_evaluation(kind, current, facts, Path(scratch)), rows)
        after = row_scores(kind, load_for_evaluation(kind, candidate, facts, Path(scratch)), rows)
    out = {}
    for metric in METRICS[kind]:
        out[metric] = {}
        for part, keep in (("all", lambda i: True), ("original", lambda i: not fresh[i]),
                           ("new", lambda i: fresh[i])):
            b, n = mean_of(before[metric], keep)
            a, _ = mean_of(after[metric], keep)
            pairs = [(x, y) for i, (x, y) in enumerate(zip(before[metric], after[metric])) if x is not None and keep(i)]
            out[metric][part] = {"before": b, "after": a, "n": n, "worse": sum(y < x - 1e-9 for x, y in pairs),
                                 "better": sum(y > x + 1e-9 for x, y in pairs)}
    return out


def gate(metrics: dict, tolerance: float = 0.0) -> list[str]:
    """Why a candidate must not be promoted (empty: promote): a metric that drops on all the validation rows by
    more than ``tolerance``, or that is worse on the original ones (sign test at ``ALPHA``)."""
    reasons = []
    for metric, parts in metrics.items():
        every, old = parts["all"], parts["original"]
        if every["n"] and every["after"] < every["before"] - tolerance - 1e-9:
            reasons.append(f"{metric} dropped on the validation ({every['before']:.3f} -> {every['after']:.3f})")
        p = sign_test(old["worse"], old["better"])
        if old["worse"] > old["better"] and p < ALPHA:
            reasons.append(f"{metric} is worse on the original validation ({old['worse']} rows worse, "
                           f"{old['better']} better: sign test p = {p:.3f})")
    return reasons


def sign_test(worse: int, better: int) -> float:
    """One-sided p-value of at least ``worse`` rows of ``worse + better`` going down if up and down were equally
    likely."""
    n = worse + better
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2 ** n if n else 1.0


# --- what to train on -----------------------------------------------------------------------------------------
def base_corpus(models_dir: Path) -> Path:
    """The corpus ``models_dir`` was built from: ``build_state.json``'s datasets directory, else the data
    directory of a TRM's ``train_config.json``."""
    candidates = []
    state = models_dir / "build_state.json"
    if state.is_file():
        candidates.append(read_json(state).get("settings", {}).get("datasets_dir"))
    for kind in KINDS:
        config = models_dir / kind / "train_config.json"
        if config.is_file():
            candidates.append(read_json(config).get("data_dir"))
    for candidate in candidates:
        if candidate and (Path(candidate) / "manifest.json").is_file():
            return Path(candidate)
    raise LearnError(f"cannot tell which corpus {models_dir} was built from (no build_state.json or "
                     f"train_config.json naming one that exists): give --data DIR")


def _check_base(base: Path) -> None:
    if not (base / "manifest.json").is_file() or not (base / "corpora.json").is_file():
        raise LearnError(f"no corpus in {base} (manifest.json or corpora.json missing): give the corpus the brain "
                         f"was built from with --data DIR")
    if (base / "extended.json").is_file():
        raise LearnError(f"{base} is a corpus learn made (it holds extended.json): give the corpus the brain was "
                         f"built from, which learn extends with all the feedback each time")


def _why_skip(models_dir: Path, kind: str, new: dict, digest: str, history: list[dict], force: bool) -> str:
    if not (models_dir / kind / "best").is_dir():
        return f"no {kind} model in {models_dir}"
    if not new["train"] + new["val"]:
        return "no feedback"
    if not new["train"]:
        return "no new training examples (the few new ones are all held out)"
    if not force:
        for entry in reversed(history):
            seen = entry.get("kinds", {}).get(kind, {})
            if seen.get("sha256"):
                if seen["sha256"] == digest:
                    return f"no new feedback since the learn of {entry['run']} (--force learns again)"
                break
    return ""


def _fine_tuning_rows(corpus: Path, kind: str, seed: int) -> tuple[list[int], int]:
    """Every new training conversation and a replay sample of the original ones (indices in episode order),
    and the training rows they hold."""
    sizes: dict[str, int] = {}
    for r in read_rows(corpus, kind, "train"):
        sizes[r["episode"]] = sizes.get(r["episode"], 0) + 1
    episodes = list(sizes)
    new = [i for i, e in enumerate(episodes) if is_new(e)]
    old = [i for i, e in enumerate(episodes) if not is_new(e)]
    count = min(len(old), max(REPLAY * len(new), MIN_REPLAY))
    replay = np.random.default_rng(seed).choice(len(old), size=count, replace=False) if count else []
    chosen = sorted(new + [old[i] for i in replay])
    return chosen, sum(sizes[episodes[i]] for i in chosen)


def _fine_tuning_config(kind: str, corpus: Path, out: Path, current: Path, rows: int, seed: int):
    """The original run's TrainConfig (its ``train_config.json``; the defaults without one) for the current
    model, with a short budget: ``EPOCHS`` passes over ``rows`` within ``STEP_RANGE``, two evaluations, the
    learning rate scaled by ``LR_SCALE``, on CPU."""
    from dexter_brain.config import ModelConfig, TrainConfig
    from dexter_brain.runs import budget_steps, default_train_config

    model = ModelConfig.from_checkpoint(current)
    original = current.parent / "train_config.json"
    fields = (TrainConfig.from_file(original) if original.is_file()
              else default_train_config(kind, corpus, out, seed=seed, device="cpu")).model_dump()
    steps = budget_steps(rows, fields["batch_size"], EPOCHS, STEP_RANGE)
    curriculum = [{**stage, "max_supervision_steps": min(stage["max_supervision_steps"], model.max_supervision_steps)}
                  for stage in fields["curriculum"]]
    fields.update(model=model.model_dump(), data_dir=corpus, out_dir=out, seed=seed, device="cpu",
                  num_threads=None, max_steps=steps, eval_every=max(steps // 2, 1),
                  warmup_steps=min(fields["warmup_steps"], steps // 5), lr=fields["lr"] * LR_SCALE,
                  early_stopping_patience=0, curriculum=curriculum)
    return TrainConfig.model_validate(fields)


# --- promotion, rollback, recovery ------------------------------------------------------------------------------
def promote(kind_dir: Path, candidate: Path) -> None:
    """Make ``candidate`` (a checkpoint directory) ``kind_dir/best`` and the current ``best/`` ``previous/``.

    Steps (each a rename but the first): copy the candidate to ``.best.incoming`` and rename it ``.best.next``;
    move ``previous/`` to ``.previous.trash``; ``best/`` -> ``previous/``; ``.best.next`` -> ``best/``; delete
    the trash. ``recover`` completes or undoes a promotion stopped between any two of them.
    """
    from dexter_brain.checkpoint import read_meta

    incoming, nxt, trash = kind_dir / _INCOMING, kind_dir / _NEXT, kind_dir / _TRASH
    shutil.rmtree(incoming, ignore_errors=True)
    try:
        shutil.copytree(candidate, incoming)
        read_meta(incoming)  # every file as its record says, before it goes anywhere near best/
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    os.replace(incoming, nxt)
    if (kind_dir / PREVIOUS).exists():
        os.replace(kind_dir / PREVIOUS, trash)
    os.replace(kind_dir / "best", kind_dir / PREVIOUS)
    os.replace(nxt, kind_dir / "best")
    shutil.rmtree(trash, ignore_errors=True)
    fsync_directory(kind_dir)


def rollback(models_dir: str | Path = "models", kinds: tuple[str, ...] = KINDS) -> dict[str, str]:
    """Swap ``previous/`` and ``best/`` of each TRM that has a ``previous/`` (byte for byte: renames only).

    Returns:
        Per kind: ``rolled back`` or why not (``no previous/``, ``no model``).

    Raises:
        LearnError: No TRM has a ``previous/``, or a learn holds the models directory.
    """
    models_dir = Path(models_dir)
    done: dict[str, str] = {}
    with _locked(models_dir):
        for kind in kinds:
            kind_dir = models_dir / kind
            if not kind_dir.is_dir():
                done[kind] = "no model"
                continue
            recover(kind_dir)
            if not (kind_dir / PREVIOUS).is_dir():
                done[kind] = "no previous/"
                continue
            # previous/ -> .best.next; best/ -> previous/; .best.next -> best/ (recover undoes or completes it).
            os.replace(kind_dir / PREVIOUS, kind_dir / _NEXT)
            os.replace(kind_dir / "best", kind_dir / PREVIOUS)
            os.replace(kind_dir / _NEXT, kind_dir / "best")
            fsync_directory(kind_dir)
            done[kind] = "rolled back"
        if "rolled back" not in done.values():
            raise LearnError(f"nothing to roll back: no TRM in {models_dir} has a previous/ (learn keeps the weights "
                             f"a promotion replaced there)")
        _append_history(models_dir, {"run": "rollback", "created_at": _now(), "rolled_back": sorted(
            k for k, v in done.items() if v == "rolled back")})
    return done


def recover(kind_dir: Path) -> str:
    """Complete or undo a promotion or rollback that stopped between its renames; returns what was done ("" when
    nothing was pending)."""
    best, previous = kind_dir / "best", kind_dir / PREVIOUS
    nxt, trash, incoming = kind_dir / _NEXT, kind_dir / _TRASH, kind_dir / _INCOMING
    action = ""
    if incoming.exists():  # a copy cut short: the promotion had not started
        shutil.rmtree(incoming)
        action = "removed an unfinished copy"
    if nxt.exists():
        if not best.exists():  # best/ moved away, its successor not yet in place: finish
            os.replace(nxt, best)
            action = "completed a promotion or rollback"
        elif not previous.exists() and trash.exists():  # a promotion had set previous/ aside: undo it
            os.replace(trash, previous)
            shutil.rmtree(nxt)
            action = "undid a promotion"
        elif not previous.exists():  # a rollback had moved previous/ only: put it back
            os.replace(nxt, previous)
            action = "undid a rollback"
        else:  # a promotion had only copied the candidate
            shutil.rmtree(nxt)
            action = "undid a promotion"
    if trash.exists():
        shutil.rmtree(trash)
    if action:
        logger.warning("%s: %s that was cut short", kind_dir, action)
        fsync_directory(kind_dir)
    return action


# --- bookkeeping ------------------------------------------------------------------------------------------------
@contextmanager
def _locked(models_dir: Path):
    """An exclusive lock on ``models_dir/learn/.lock`` (where ``fcntl`` exists), held for the run."""
    directory = models_dir / LEARN_DIR
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; one learn at a time is up to the caller
        yield
        return
    with open(directory / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LearnError(f"another learn or rollback is running on {models_dir} (it holds "
                             f"{directory / '.lock'}): wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_run_dir(root: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run, n = root / stamp, 1
    while run.exists():
        n += 1
        run = root / f"{stamp}-{n}"
    run.mkdir(parents=True)
    return run


def _history(models_dir: Path) -> list[dict]:
    path = models_dir / LEARN_DIR / HISTORY
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:  # a line torn by a crash: the others still count
            continue
    return entries


def _append_history(models_dir: Path, entry: dict) -> None:
    append_line(models_dir / LEARN_DIR / HISTORY, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))


def _prune(root: Path, keep: Path) -> None:
    """Delete the corpora and candidates of earlier runs (their ``learn.json`` stays)."""
    for run in root.iterdir():
        if run.is_dir() and run != keep:
            for part in ("corpus", "models"):
                shutil.rmtree(run / part, ignore_errors=True)
