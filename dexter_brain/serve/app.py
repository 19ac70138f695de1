"""The HTTP app: ``create_app(brain, settings)`` puts a ``UnifiedConsciousness`` behind FastAPI.

Each route validates its body with a model from ``schemas.py``, hands the wrapper call to a worker thread
(``settings.workers`` of them; the event loop never runs a model) and returns the wrapper's dict as JSON,
with the same keys as the Python API. Requests of one conversation wait for each other in arrival order
(a turn's memory, tool and plan calls are never interleaved with another request of its conversation);
requests of different conversations run side by side. The lifespan loads the carries found in the carry
directory at start and, after uvicorn has drained the requests in flight, saves them at stop.

Errors: a body that does not fit its schema, or that a wrapper rejects (its ``ValueError``/``TypeError``),
gets 422 with the message; an unknown memory id 404; an existing one 409; a TRM the brain lacks 503.

Adding an endpoint (``POST /v1/feedback`` is one): write its request
model in ``schemas.py`` and a route on ``router`` below (or on your own ``APIRouter`` passed through
``create_app(extra_routers=...)``) that calls ``service(request).in_conversation(...)`` or ``.call(...)``;
token, body limit, metrics and the worker pool then apply to it as to every other route.

Example:
    >>> from dexter_brain import UnifiedConsciousness
    >>> from dexter_brain.serve import ServeSettings, create_app
    >>> app = create_app(UnifiedConsciousness.from_dir("models"), ServeSettings(models_dir="models"))
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse

from dexter_brain import __version__
from dexter_brain.serve.carries import fingerprints, load_carries, save_carries
from dexter_brain.serve.metrics import ServeMetrics
from dexter_brain.serve.middleware import BodyLimitMiddleware, MetricsMiddleware, TokenMiddleware
from dexter_brain.serve.schemas import (
    CONVERSATION_ID_PATTERN, MAX_MEMORY_ID_CHARS, AddMemoryRequest, AddMemoryResponse, FeedbackRequest,
    FeedbackResponse, NextStepRequest, NextStepResponse, PlanRequest, PlanResponse, ResetResponse, RetrieveRequest,
    RetrieveResponse, SelectToolRequest, SelectToolResponse, TurnRequest, TurnResponse,
)
from dexter_brain.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


class InputError(Exception):
    """A wrapper rejected the input (its ValueError or TypeError): answered with 422 and its message."""


class ConversationQueue:
    """One ``asyncio.Lock`` per conversation with requests in flight, dropped when its last request leaves,
    so the set stays as small as the traffic. Runs on the event loop only, so it needs no thread lock; the
    locks are fair, so a conversation's requests run in the order they arrived."""

    def __init__(self):
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, conversation_id: str):
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._waiting[conversation_id] = self._waiting.get(conversation_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[conversation_id] -= 1
            if not self._waiting[conversation_id]:
                del self._waiting[conversation_id], self._locks[conversation_id]


class BrainService:
    """What the routes share: the brain, the worker pool, the conversation queue, metrics and carry files."""

    def __init__(self, brain, settings: ServeSettings, metrics: ServeMetrics):
        self.brain, self.settings, self.metrics = brain, settings, metrics
        self.conversations = ConversationQueue()
        self.executor: ThreadPoolExecutor | None = None
        self.started_at = time.time()
        self.fingerprints = fingerprints(brain)
        self._saver: asyncio.Task | None = None

    # --- calls ------------------------------------------------------------------------------------------------
    def part(self, kind: str):
        """The brain's TRM of ``kind``, or 503 when it was not loaded."""
        part = getattr(self.brain, kind)
        if part is None:
            raise HTTPException(503, f"no {kind} TRM is loaded ({self.brain.missing.get(kind, 'not given')})")
        return part

    async def call(self, fn, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` on a worker thread."""
        future = asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # A thread cannot be stopped: wait for the call to end, so that its conversation is not handed to
            # the next request while the call still runs.
            await asyncio.wait([future])
            raise
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from exc

    async def in_conversation(self, conversation_id: str, fn, /, *args, **kwargs):
        """``call`` once every earlier request of ``conversation_id`` has finished."""
        async with self.conversations.hold(conversation_id):
            return await self.call(fn, *args, **kwargs)

    async def turn(self, body: TurnRequest) -> dict:
        async with self.conversations.hold(body.conversation_id):
            try:
                # process_input runs each model call with asyncio.to_thread: the pool is the loop's default.
                return await self.brain.process_input(**body.model_dump())
            except (ValueError, TypeError) as exc:
                raise InputError(str(exc)) from exc

    # --- lifespan ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="dexter-brain")
        asyncio.get_running_loop().set_default_executor(self.executor)
        directory = self.settings.carry_path
        if directory is not None:
            counts = load_carries(self.brain, directory, self.fingerprints)
            if counts:
                logger.info("resumed carries from %s: %s", directory,
                            ", ".join(f"{kind} {n}" for kind, n in counts.items()))
            if self.settings.save_every_seconds > 0:
                self._saver = asyncio.create_task(self._save_periodically(self.settings.save_every_seconds))

    async def stop(self) -> None:
        if self._saver is not None:
            self._saver.cancel()
            await asyncio.gather(self._saver, return_exceptions=True)
        # uvicorn has drained the requests; a call cut off by the drain timeout still finishes here.
        self.executor.shutdown(wait=True)
        self.save()

    def save(self) -> None:
        directory = self.settings.carry_path
        if directory is None:
            return
        held = save_carries(self.brain, directory, self.fingerprints)
        self.metrics.carry_saves.inc()
        logger.info("saved the carries of %d conversations to %s", held, directory)

    async def _save_periodically(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self.save)
            except Exception:  # a full disk must not take the server down; the next try may work
                logger.exception("saving the carries failed")


def service(request: Request) -> BrainService:
    return request.app.state.service


Service = Depends(service)
ConversationIdPath = Path(pattern=CONVERSATION_ID_PATTERN, description="1-128 letters, digits or ._:@~-")
router = APIRouter()


# --- status ------------------------------------------------------------------------------------------------------
@router.get("/health", summary="Liveness and the models' status (no token needed)")
async def health(s: BrainService = Service) -> dict:
    return {"alive": True, "uptime_s": round(time.time() - s.started_at, 3),
            "requests_in_flight": s.metrics.requests_in_flight, **s.brain.health()}


@router.get("/v1/capabilities", summary="What each TRM can do, its size and vocabulary")
async def capabilities(s: BrainService = Service) -> dict:
    return s.brain.capabilities()


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
async def metrics(s: BrainService = Service) -> Response:
    return Response(s.metrics.render(), media_type=s.metrics.content_type)


# --- the three TRMs and the turn ---------------------------------------------------------------------------------
@router.post("/v1/retrieve", response_model=RetrieveResponse, summary="MemoryTRM.retrieve")
async def retrieve(body: RetrieveRequest, s: BrainService = Service):
    return await s.in_conversation(body.conversation_id, s.part("memory").retrieve, **body.model_dump())


@router.post("/v1/select_tool", response_model=SelectToolResponse, summary="ToolTRM.select_tool")
async def select_tool(body: SelectToolRequest, s: BrainService = Service):
    return await s.in_conversation(body.conversation_id, s.part("tool").select_tool, **body.model_dump())


@router.post("/v1/plan", response_model=PlanResponse, summary="ReasoningTRM.plan")
async def plan(body: PlanRequest, s: BrainService = Service):
    return await s.in_conversation(body.conversation_id, s.part("reasoning").plan, **body.model_dump())


@router.post("/v1/next_step", response_model=NextStepResponse, summary="ReasoningTRM.next_step")
async def next_step(body: NextStepRequest, s: BrainService = Service):
    return await s.in_conversation(body.conversation_id, s.part("reasoning").next_step, **body.model_dump())


@router.post("/v1/turn", response_model=TurnResponse, summary="UnifiedConsciousness.process_input")
async def turn(body: TurnRequest, s: BrainService = Service):
    return await s.turn(body)


@router.post("/v1/feedback", response_model=FeedbackResponse, summary="UnifiedConsciousness.feedback")
async def feedback(body: FeedbackRequest, s: BrainService = Service):
    # A part for a TRM the brain lacks is 503, as on that TRM's own endpoints.
    if body.used is not None or body.rejected is not None:
        s.part("memory")
    if body.tool_status is not None:
        s.part("tool")
    if body.plan_success is not None:
        s.part("reasoning")
    fields = body.model_dump()
    return await s.in_conversation(body.conversation_id, s.brain.feedback, fields.pop("conversation_id"), **fields)


# --- memories and conversations ----------------------------------------------------------------------------------
@router.post("/v1/memories", response_model=AddMemoryResponse, status_code=201, summary="MemoryTRM.add_memory")
async def add_memory(body: AddMemoryRequest, s: BrainService = Service):
    memory = s.part("memory")
    fields = body.model_dump(exclude_none=True)
    if body.id is not None and body.id in memory.featurizer.position:
        raise HTTPException(409, f"a memory with id {body.id!r} already exists (DELETE /v1/memories/{body.id} first)")
    return {"id": await s.call(memory.add_memory, fields.pop("text"), **fields)}


@router.delete("/v1/memories/{memory_id}", status_code=204, response_class=Response,
               summary="MemoryTRM.remove_memory")
async def remove_memory(memory_id: str = Path(min_length=1, max_length=MAX_MEMORY_ID_CHARS),
                        s: BrainService = Service) -> Response:
    try:
        await s.call(s.part("memory").remove_memory, memory_id)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from exc
    return Response(status_code=204)


@router.post("/v1/conversations/{conversation_id}/reset", response_model=ResetResponse,
             summary="UnifiedConsciousness.reset_conversation")
async def reset_conversation(conversation_id: str = ConversationIdPath, s: BrainService = Service):
    async with s.conversations.hold(conversation_id):
        # On the loop, not the pool: dropping a carry takes microseconds, and behind the queue of model calls
        # it would wait as long as one.
        s.brain.reset_conversation(conversation_id)
    return {"conversation_id": conversation_id, "reset": True}


# --- the app -----------------------------------------------------------------------------------------------------
def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}, status_code=422)


def create_app(brain, settings: ServeSettings, *, extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    """An ASGI app serving ``brain`` (a ``UnifiedConsciousness``); run it with ``run_server`` or any ASGI server.

    Args:
        brain: The brain to serve; the app owns its carries while it runs.
        settings: Token, limits, workers and carry directory (host and port are for ``run_server``).
        extra_routers: More routes (e.g. ``/v1/feedback``), behind the same token, limits and metrics.

    Returns:
        The FastAPI app; its lifespan starts the worker pool and loads the carries, and at stop saves them.
    """
    metrics = ServeMetrics(brain)
    svc = BrainService(brain, settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(title="dexter-brain", version=__version__, lifespan=lifespan,
                  description="Memory retrieval, tool selection and planning by three small recursive models, "
                              "with a latent carry per conversation. Send `Authorization: Bearer <token>` when "
                              "the server has one (every path except /health).")
    app.state.service = svc
    app.include_router(router)
    for extra in extra_routers:
        app.include_router(extra)
    app.add_exception_handler(InputError, _input_error)
    # add_middleware wraps what is there, so the last one added runs first: metrics, token, body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TokenMiddleware, token=settings.token)
    # Metrics are labelled with the route's path template: FastAPI's own (/docs, /openapi.json) and ours.
    routes = [r for r in app.router.routes if hasattr(r, "path")]
    routes += [r for included in (router, *extra_routers) for r in included.routes]
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=routes)
    return app
