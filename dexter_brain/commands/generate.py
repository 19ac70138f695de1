"""Generate the memory, tool and reasoning corpora (plus vocabulary and training tensors) from a raw directory.

Calls ``dexter_brain.corpora.generate_corpora`` and prints a one-line summary. Without ``--raw`` the embedded
sample is used: it is generated into ``datasets/raw/sample`` first when that directory is empty or missing.

``--check-contamination`` re-reads the split files written to ``--out`` and fails (exit 1) when a scored
validation or test example's normalised text appears in train. Given with ``--raw`` it generates first and
then checks what was written; given without ``--raw`` it only checks an existing ``--out`` (nothing is
generated). Generation itself always runs the same check in memory before it writes the manifest.

Run from the repository root (CPU, a few seconds on the sample):

    python -m pipelines.generate_trm_training_data --raw datasets/raw/sample --out datasets/offline
    python -m pipelines.generate_trm_training_data --out datasets/offline --check-contamination
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from dexter_brain.cli import fail
from dexter_brain.corpora import CorpusSettings, check_contamination, generate_corpora
from dexter_brain.corpora.split import ContaminationError
from dexter_brain.io import read_jsonl
from dexter_brain.raw import RawStoreError
from dexter_brain.schema import EXAMPLES, SPLITS

logger = logging.getLogger(__name__)

DEFAULT_RAW = Path("datasets/raw/sample")
DEFAULT_OUT = Path("datasets/offline")

EXAMPLE = """example:
  python -m pipelines.generate_trm_training_data --raw ../shared/devdata/api_bank --out /tmp/offline --seed 1
  python -m pipelines.generate_trm_training_data --out /tmp/offline --check-contamination"""


def generate_trm_training_data(raw_dir: str | Path, out_dir: str | Path = DEFAULT_OUT,
                               settings: CorpusSettings | None = None,
                               show_progress_bar: bool | None = None) -> dict:
    """Mine ``raw_dir`` into the three corpora under ``out_dir`` and return the manifest.

    Args:
        raw_dir: A raw directory holding any subset of ``d2_memory.json``, ``brain.db``,
            ``training_data_fast.jsonl`` and ``art_*.json``; it is only read.
        out_dir: Where the corpora, vocabulary and tensors are written (files replaced atomically).
        settings: Seed, split fractions, vocabulary size and mining choices; defaults to ``CorpusSettings()``.
        show_progress_bar: Show a bar over the stages; None means on when logging shows INFO.

    Returns:
        The manifest, also written to ``out_dir/manifest.json``:
        ``version`` (manifest format), ``package_version``, ``sources`` (raw file name -> sha256),
        ``ingest`` (records read and skipped per kind, number of problems), ``settings`` (the
        ``CorpusSettings`` used), ``lengths`` (token lengths of the tensors), ``vocab`` (size and sha256 of
        ``tokenizer.model``), ``corpora`` (per corpus ``memory``/``tool``/``reasoning``: ``splits`` counts,
        ``sha256`` per split, ``total``, ``unscored_duplicates``, ``empty_reason`` when empty, plus
        ``memory.followup_fraction``, ``tool.correction_fraction``, ``tool.reserved_tools`` ...) and
        ``fingerprint`` (one hash over every split).

    Raises:
        RawStoreError: ``raw_dir`` is missing or holds nothing usable.
        ContaminationError: A scored val/test example also appears in train.

    Example:
        >>> manifest = generate_trm_training_data("datasets/raw/sample", "/tmp/offline")  # doctest: +SKIP
        >>> sorted(manifest["corpora"]["tool"]["splits"])  # doctest: +SKIP
        ['test', 'train', 'val']
    """
    return generate_corpora(raw_dir, out_dir, settings or CorpusSettings(), show_progress_bar=show_progress_bar)


def check_written_contamination(out_dir: str | Path) -> dict[str, int]:
    """Re-read every ``{kind}/{split}.jsonl`` under ``out_dir`` and run ``check_contamination`` on each corpus.

    Returns:
        The number of examples checked per corpus (corpora with no split files are left out).

    Raises:
        FileNotFoundError: ``out_dir`` holds no split files at all.
        ContaminationError: A scored val/test example's normalised text also appears in train.
    """
    out = Path(out_dir)
    checked = {}
    for kind, row in EXAMPLES.items():
        paths = [out / kind / f"{split}.jsonl" for split in SPLITS]
        if not any(p.is_file() for p in paths):
            continue
        examples = [row.model_validate(r) for p in paths if p.is_file() for r in read_jsonl(p)]
        check_contamination(examples, kind)
        checked[kind] = len(examples)
    if not checked:
        raise FileNotFoundError(f"no corpora in {out}: generate them first (run without --check-contamination, "
                                f"or add --raw DIR)")
    return checked


def ensure_sample(raw_dir: Path, seed: int, show_progress_bar: bool | None) -> Path:
    """Generate the embedded sample into ``raw_dir`` unless it already holds files."""
    if raw_dir.is_dir() and any(raw_dir.iterdir()):
        return raw_dir
    from dexter_brain.sample import (
        generate_sample,  # only needed when the sample is missing
    )

    logger.warning("generating the embedded sample into %s (seed %d)", raw_dir, seed)
    generate_sample(raw_dir, seed=seed, scale=1.0, show_progress_bar=show_progress_bar)
    return raw_dir


def summary_line(manifest: dict, out_dir: str | Path) -> str:
    """``memory 120/14/15, tool ... (train/val/test); follow-ups 8.1 %, corrections 5.0 %; wrote DIR``."""
    corpora = manifest["corpora"]
    counts = ", ".join(f"{kind} " + "/".join(str(corpora[kind]["splits"][s]) for s in SPLITS)
                       for kind in EXAMPLES)
    empty = [f"; {kind} is empty: {corpora[kind]['empty_reason']}" for kind in EXAMPLES if "empty_reason" in corpora[kind]]
    return (f"{counts} (train/val/test); follow-ups {100 * corpora['memory']['followup_fraction']:.1f} %, "
            f"corrections {100 * corpora['tool']['correction_fraction']:.1f} %"
            + "".join(empty) + f"; wrote {out_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.generate_trm_training_data",
        description="Mine a raw directory into the memory, tool and reasoning corpora, the shared vocabulary "
                    "and the training tensors.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--raw", type=Path, default=None,
                        help=f"raw directory to mine (default: the embedded sample in {DEFAULT_RAW}, generated "
                             f"there first if missing)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output directory for the corpora (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=None,
                        help="salt of the split hash and of generated questions (default: 0, or the --config value)")
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="requested vocabulary size, shrunk for small corpora (default: 8000, or the --config "
                             "value)")
    parser.add_argument("--config", type=Path, default=None,
                        help="CorpusSettings as JSON; --seed and --vocab-size override its values")
    parser.add_argument("--check-contamination", action="store_true",
                        help="re-read the split files in --out and exit 1 if a val/test text appears in train; "
                             "without --raw it only checks an existing --out and generates nothing")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars (warnings about skipped raw records still show)")
    return parser


def _settings(args: argparse.Namespace) -> CorpusSettings:
    data = {}
    if args.config is not None:
        data = CorpusSettings.model_validate_json(args.config.read_text(encoding="utf-8")).model_dump()
    if args.seed is not None:
        data["seed"] = args.seed
    if args.vocab_size is not None:
        data["vocab_size"] = args.vocab_size
    return CorpusSettings.model_validate(data)


def _one_line(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "settings"
    return f"invalid settings in {source}: {where}: {first['msg']}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    show_progress_bar = not args.quiet
    try:
        if args.check_contamination and args.raw is None:
            checked = check_written_contamination(args.out)
            print(f"no contamination in {args.out}: "
                  + ", ".join(f"{kind} {n} examples" for kind, n in checked.items()))
            return 0
        settings = _settings(args)
        raw = args.raw if args.raw is not None else ensure_sample(DEFAULT_RAW, settings.seed, show_progress_bar)
        manifest = generate_trm_training_data(raw, args.out, settings, show_progress_bar=show_progress_bar)
        if args.check_contamination:
            check_written_contamination(args.out)
        print(summary_line(manifest, args.out))
        return 0
    except ContaminationError as error:
        print(f"contamination: {error}", file=sys.stderr)
        return 1
    except ValidationError as error:
        print(_one_line(error, str(args.config) if args.config else "flags"), file=sys.stderr)
        return 1
    except (RawStoreError, ValueError, OSError) as error:
        return fail(error)

