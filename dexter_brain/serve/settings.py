"""``ServeSettings``: how ``dexter-brain serve`` runs (address, token, threads, limits, where carries live).

Kept apart from the app so that the command can check its options (a public address without a token is
refused) before FastAPI, uvicorn or torch are imported.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOKEN_ENV = "DEXTER_BRAIN_TOKEN"
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("localhost",)


def default_workers() -> int:
    """One worker thread per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; every other address (0.0.0.0 included) is public."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


class ServeSettings(BaseModel):
    """Everything ``create_app`` and ``run_server`` need besides the brain itself."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    models_dir: Path | None = None
    """The models directory the brain was loaded from (holds ``memory/``, ``tool/``, ``reasoning/``)."""
    host: str = "127.0.0.1"
    """Address to bind. Anything other than loopback needs ``token``."""
    port: int = Field(default=8765, ge=0, le=65535)
    """TCP port; 0 picks a free one (the ready line says which)."""
    token: str | None = Field(default=None, repr=False)
    """Bearer token every endpoint except ``/health`` requires; None leaves the server open (loopback only)."""
    carry_dir: Path | None = None
    """Where carries are loaded from at start and saved to at stop; None means ``<models_dir>/carries``."""
    feedback_dir: Path | None = None
    """Where ``/v1/feedback`` appends (a feedback directory, never the app's raw one); None means
    ``<models_dir>/feedback``."""
    workers: int = Field(default_factory=default_workers, ge=1, le=256)
    """Threads that run model calls (the event loop never does)."""
    torch_threads: int = Field(default=1, ge=1, le=256)
    """``torch.set_num_threads`` for the process: small models gain little from intra-op threads, and
    ``workers`` already keep the cores busy."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    """Largest request body accepted; a larger one gets 413."""
    max_concurrent_requests: int = Field(default=256, ge=1)
    """Connections and requests handled at once; more get 503 at once instead of queueing without bound."""
    drain_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM, how long in-flight requests may take to finish before they are cancelled."""
    save_every_seconds: float = Field(default=300.0, ge=0)
    """Also save carries this often while running (0: only at stop), so a crash loses little."""
    quiet: bool = False
    """Warnings only: no access log, no info lines."""

    @model_validator(mode="after")
    def _check_token(self) -> "ServeSettings":
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ValueError(f"token is {len(self.token)} characters: use at least {MIN_TOKEN_CHARS} (e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(f"host {self.host} is not a loopback address: serving on it needs a token "
                             f"(--token or {TOKEN_ENV}), or bind 127.0.0.1")
        return self

    @property
    def carry_path(self) -> Path | None:
        """Where carries persist; None when neither ``carry_dir`` nor ``models_dir`` is set."""
        if self.carry_dir is not None:
            return self.carry_dir
        return self.models_dir / "carries" if self.models_dir is not None else None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
