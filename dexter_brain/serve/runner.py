"""``run_server(settings)``: load the brain, bind the address and run the app under uvicorn until SIGTERM
or Ctrl-C, then drain the requests in flight and save the carries (the app's lifespan does the saving).

Workers are threads in one process, not uvicorn worker processes: the carries live in this process, and a
second process would hold a second, diverging copy of every conversation.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import uvicorn

from dexter_brain.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def load_brain(settings: ServeSettings):
    """The ``UnifiedConsciousness`` of ``settings.models_dir``, with torch's threads set for serving."""
    import torch

    from dexter_brain import UnifiedConsciousness

    torch.set_num_threads(settings.torch_threads)
    return UnifiedConsciousness.from_dir(settings.models_dir, device=settings.device,
                                         feedback_dir=settings.feedback_dir)


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: a free one). Raises OSError (address in use, no such host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP is what makes asyncio set TCP_NODELAY on accepted connections; with proto 0 it does
    # not, and Nagle's algorithm holds each response body back ~40 ms behind its headers.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    return sock


def run_server(settings: ServeSettings, brain=None, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``brain`` (loaded from ``settings.models_dir`` when None) until SIGTERM or Ctrl-C.

    Args:
        settings: Address, token, limits, workers, carry directory.
        brain: A ``UnifiedConsciousness`` to serve instead of loading one.
        on_ready: Called with the server's URL once it accepts requests (the carries are loaded by then).

    Raises:
        CheckpointError: The models directory is missing or broken.
        OSError: The address cannot be bound.
    """
    sock = bind(settings.host, settings.port)  # first: a taken port fails before torch and the models load
    from dexter_brain.serve.app import create_app

    brain = brain if brain is not None else load_brain(settings)
    app = create_app(brain, settings)
    url = settings.model_copy(update={"port": sock.getsockname()[1]}).url
    config = uvicorn.Config(app, log_level="warning" if settings.quiet else "info", access_log=not settings.quiet,
                            timeout_graceful_shutdown=settings.drain_seconds, server_header=False,
                            limit_concurrency=settings.max_concurrent_requests)
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started and on_ready is not None:
            on_ready(url)
        await task

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, once it has shut down cleanly
        pass
