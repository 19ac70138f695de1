"""``dexter-brain serve``: the brain behind an HTTP API (FastAPI + uvicorn, the ``serve`` extra).

- ``settings.py``: ``ServeSettings`` (address, token, limits, workers, carry directory);
- ``schemas.py``: request and response bodies, the same keys as the Python API;
- ``metrics.py``: Prometheus metrics; ``middleware.py``: token, body limit, metrics;
- ``carries.py``: the carry directory (loaded at start, saved at stop);
- ``app.py``: ``create_app(brain, settings)``; ``runner.py``: ``run_server(settings)``;
- ``command.py``: the ``dexter-brain serve`` command.

Importing this package needs nothing beyond the core: FastAPI is imported with ``create_app``.
"""

_LAZY = {
    "ServeSettings": "dexter_brain.serve.settings",
    "create_app": "dexter_brain.serve.app",
    "run_server": "dexter_brain.serve.runner",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dexter_brain.serve' has no attribute {name!r}")
