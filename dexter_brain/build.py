"""The one-command build: raw data -> corpora -> vocabulary -> three trained TRMs -> calibration ->
evaluation report, with a record of finished stages so an interrupted build can continue (``resume``).

Without a raw directory the embedded sample is generated (once) into ``datasets/raw/sample``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from dexter_brain.corpora import CorpusSettings, generate_corpora
from dexter_brain.io import read_json, write_json

logger = logging.getLogger(__name__)

KINDS = ("memory", "tool", "reasoning")
STATE_FILE = "build_state.json"
QUICK_EVALUATION = dict(max_rows=200, latency_samples=5)
"""With ``quick``: calibrate and evaluate on the first 200 rows of each split, 5 timed calls per method."""
QUICK_SCALE = 0.2
"""With ``quick`` and no ``scale``: the embedded sample at a fifth of its default size (mined in seconds)."""
DEFAULT_SAMPLE_DIR = Path("datasets/raw/sample")


def ensure_sample(sample_dir: Path, *, seed: int = 0, scale: float = 1.0, show_progress_bar: bool | None = None) -> Path:
    """Generate the embedded sample into ``sample_dir`` unless the same sample is already there."""
    from dexter_brain.sample import MARKER, generate_sample

    marker = sample_dir / MARKER
    if marker.exists():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("seed") == seed and float(info.get("scale", -1)) == float(scale):
            return sample_dir
    logger.info("generating the embedded sample into %s (seed %d, scale %s)", sample_dir, seed, scale)
    generate_sample(sample_dir, seed=seed, scale=scale, show_progress_bar=show_progress_bar)
    return sample_dir


class BuildState:
    """``models/build_state.json``: which stages finished, with their timings and settings."""

    def __init__(self, path: Path, settings: dict, resume: bool):
        self.path, self.settings = path, settings
        previous = read_json(path) if path.exists() else None
        # The models directory holds a build made with other settings: nothing of it may be resumed.
        self.is_other_build = bool(previous) and previous.get("settings") != settings
        if resume and previous and not self.is_other_build:
            self.stages: dict[str, dict] = previous.get("stages", {})
        else:
            if resume and previous:
                logger.warning("--resume: the previous build used other settings; starting over")
            self.stages = {}

    def done(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("done", False)

    def finish(self, stage: str, seconds: float, **info) -> None:
        self.stages[stage] = {"done": True, "seconds": round(seconds, 2), **info}
        write_json(self.path, {"settings": self.settings, "stages": self.stages})

    def seconds(self, prefix: str) -> float:
        return round(sum(v.get("seconds", 0.0) for k, v in self.stages.items() if k.startswith(prefix)), 2)


def build_settings(raw: str | Path | None, datasets_dir: str | Path, *, device: str = "auto", seed: int = 0,
                   quick: bool = False, scale: float | None = None, sample_dir: str | Path = DEFAULT_SAMPLE_DIR
                   ) -> dict:
    """What ``build_state.json`` records of a build: a ``resume`` continues only a build with the same.
    ``scale`` None is the sample's default size (``QUICK_SCALE`` with ``quick``)."""
    raw_dir = Path(raw) if raw is not None else Path(sample_dir)
    scale = scale if scale is not None else QUICK_SCALE if quick else 1.0
    return {"raw": str(raw_dir), "sample": raw is None, "scale": scale, "seed": seed, "quick": quick,
            "device": device, "datasets_dir": str(Path(datasets_dir))}


def build_brain(raw: str | Path | None = None, datasets_dir: str | Path = "datasets/offline",
                models_dir: str | Path = "models", *, device: str = "auto", seed: int = 0, quick: bool = False,
                resume: bool = False, scale: float | None = None, sample_dir: str | Path = DEFAULT_SAMPLE_DIR,
                threads: int | None = None, show_progress_bar: bool | None = None) -> dict:
    """Build the whole brain from a raw directory (or the embedded sample).

    Args:
        raw: The app's raw directory; None generates and uses the embedded sample.
        datasets_dir: Where the corpora go.
        models_dir: Where the three TRMs, ``report.json`` and ``report.md`` go.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: Seeds the sample, the split salt, initialisation and data order.
        quick: A smoke run: the embedded sample at ``QUICK_SCALE`` (unless ``scale`` is given), a smaller model
            and a few steps per TRM (``runs.QUICK``), calibration and evaluation on the first rows of each split
            (``QUICK_EVALUATION``). Checks the pipeline, not quality.
        resume: Skip finished stages and continue training from ``last/`` checkpoints.
        scale: Size of the embedded sample (ignored with ``raw``); None: 1.0, or ``QUICK_SCALE`` with ``quick``.
        threads: CPU threads for torch while training (None: torch's default, or 1 with ``quick``: ``runs.QUICK``).
        sample_dir: Where the embedded sample is generated.
        show_progress_bar: None means on when logging shows INFO.

    Returns:
        A summary: ``raw``, ``datasets_dir``, ``models_dir``, ``counts`` (per corpus and split),
        ``trained`` (per TRM: steps, seconds, best metric), ``skipped`` (TRMs without data, with the reason),
        ``report`` (the evaluation report, or None), ``seconds`` per stage and in total.
    """
    start = time.perf_counter()
    datasets_dir, models_dir = Path(datasets_dir), Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    raw_dir = Path(raw) if raw is not None else Path(sample_dir)
    settings = build_settings(raw, datasets_dir, device=device, seed=seed, quick=quick, scale=scale,
                              sample_dir=sample_dir)
    scale = settings["scale"]
    state = BuildState(models_dir / STATE_FILE, settings, resume)
    # Starting over starts the training over too: the last/ checkpoints belong to the other build.
    resume = resume and not state.is_other_build

    if not state.done("generate"):
        t = time.perf_counter()
        if raw is None:
            ensure_sample(raw_dir, seed=seed, scale=scale, show_progress_bar=show_progress_bar)
        manifest = generate_corpora(raw_dir, datasets_dir, CorpusSettings(seed=seed),
                                    show_progress_bar=show_progress_bar)
        state.finish("generate", time.perf_counter() - t, fingerprint=manifest["fingerprint"])
    manifest = read_json(datasets_dir / "manifest.json")

    from dexter_brain.runs import train_trm

    trained, skipped = {}, {}
    for kind in KINDS:
        entry = manifest["corpora"][kind]
        if not entry["splits"]["train"]:
            skipped[kind] = entry.get("empty_reason", "no training examples")
            shutil.rmtree(models_dir / kind, ignore_errors=True)
            continue
        stage = f"train.{kind}"
        if state.done(stage):
            trained[kind] = state.stages[stage]
            continue
        if not resume:
            shutil.rmtree(models_dir / kind, ignore_errors=True)
        t = time.perf_counter()
        # A resumed build never drops a run it cannot continue: it says so and stops (on_other_run="refuse").
        result = train_trm(kind, datasets_dir, models_dir / kind, quick=quick, seed=seed, device=device,
                           resume=resume, on_other_run="refuse", show_progress_bar=show_progress_bar,
                           **({"num_threads": threads} if threads is not None else {}))
        summary = {k: result[k] for k in ("steps", "best_metric", "primary_metric", "examples_per_second")}
        state.finish(stage, time.perf_counter() - t, **summary)
        trained[kind] = state.stages[stage]

    report = None
    if trained:
        from dexter_brain.evaluation import calibrate_brain, evaluate_brain

        if not state.done("calibrate"):
            t = time.perf_counter()
            calibrate_brain(models_dir, datasets_dir, max_rows=QUICK_EVALUATION["max_rows"] if quick else None)
            state.finish("calibrate", time.perf_counter() - t)
        t = time.perf_counter()
        build_seconds = {"generate": state.seconds("generate"), "train": state.seconds("train."),
                         "calibrate": state.seconds("calibrate")}
        report = evaluate_brain(models_dir, datasets_dir, build_seconds=build_seconds,
                                show_progress_bar=show_progress_bar, **(QUICK_EVALUATION if quick else {}))
        state.finish("evaluate", time.perf_counter() - t)

    return {
        "raw": str(raw_dir), "datasets_dir": str(datasets_dir), "models_dir": str(models_dir),
        "counts": {k: manifest["corpora"][k]["splits"] for k in KINDS},
        "trained": trained, "skipped": skipped, "report": report,
        "seconds": {"generate": state.seconds("generate"), "train": state.seconds("train."),
                    "calibrate": state.seconds("calibrate"), "evaluate": state.seconds("evaluate"),
                    "total": round(time.perf_counter() - start, 2)},
    }
