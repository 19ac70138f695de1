"""``dexter-brain serve``: the brain over HTTP for a host app in any language.

    dexter-brain serve --models-dir models
    python -m dexter_brain.serve --models-dir models --host 0.0.0.0 --token "$(cat token.txt)"

Needs the ``serve`` extra: ``python -m pip install -e ".[serve]"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from dexter_brain.serve.settings import TOKEN_ENV, ServeSettings, default_workers

EXTRA_PACKAGES = ("fastapi", "uvicorn", "prometheus_client")
EXAMPLE = f"""example:
  dexter-brain serve --models-dir models
  curl -s localhost:8765/v1/retrieve -d '{{"query": "When does my passport expire?", "conversation_id": "c1"}}'
  dexter-brain serve --models-dir models --host 0.0.0.0 --port 8765 --token "$(cat token.txt)"

The token may also come from ${TOKEN_ENV} (then it does not show in the process list).
SIGTERM or Ctrl-C: finish the requests in flight, save the carries, exit."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dexter-brain serve", description="Serve the brain over HTTP: retrieve, "
                                "select_tool, plan, next_step, turn, feedback, memories, /health, /metrics, /docs.",
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="the models directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback needs --token")
    p.add_argument("--port", type=int, default=8765, help="TCP port (0: a free one; the ready line says which)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                   help=f"bearer token required on every path but /health (default: ${TOKEN_ENV})")
    p.add_argument("--carry-dir", type=Path, help="where carries are loaded at start and saved at stop "
                   "(default: <models-dir>/carries)")
    p.add_argument("--feedback-dir", type=Path, help="where POST /v1/feedback appends (default: "
                   "<models-dir>/feedback; never the app's raw directory)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="threads running model calls (default: one per core)")
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads per call (default 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--save-every", type=float, default=300.0,
                   help="also save carries every N seconds while running (0: only at stop)")
    p.add_argument("--quiet", action="store_true", help="warnings only, no access log (the ready line stays)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    missing = [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: dexter-brain serve needs {', '.join(missing)}: install the extra with "
              "python -m pip install 'dexter-brain[serve]' (or -e \".[serve]\" in a checkout)", file=sys.stderr)
        return 1
    try:
        settings = ServeSettings(models_dir=args.models_dir, host=args.host, port=args.port, token=args.token,
                                 carry_dir=args.carry_dir, feedback_dir=args.feedback_dir, workers=args.workers,
                                 torch_threads=args.torch_threads, device=args.device,
                                 save_every_seconds=args.save_every, quiet=args.quiet)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        print(f"error: {where + ': ' if where else ''}{message}", file=sys.stderr)
        return 1
    if not settings.models_dir.is_dir():  # said before torch is imported, which takes seconds
        print(f"error: models directory not found: {settings.models_dir}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    from dexter_brain.serve.runner import run_server

    def ready(url: str) -> None:  # printed even with --quiet: with --port 0 it is how a script learns the port
        print(f"dexter-brain serve: listening on {url} (docs: {url}/docs)", flush=True)

    try:
        run_server(settings, on_ready=ready)
    except OSError as exc:  # the address is taken or does not exist here
        print(f"error: cannot bind {settings.host}:{settings.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        from dexter_brain.checkpoint import CheckpointError  # imports torch: only once it is loaded anyway

        if not isinstance(exc, CheckpointError):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
