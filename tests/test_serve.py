"""Tests for dexter_brain.serve: the real server, started with ``python -m dexter_brain.serve`` on a free
loopback port in a subprocess on the session's tiny brain, driven over HTTP.

Every answer is compared with the in-process API's on a fresh copy of the same brain, fed the same calls in
the same order. Also: the token (401 without it or with a wrong one), 422 naming the field for malformed
bodies and for input the wrappers reject, 413 for a body over the limit, 404/409 for memory ids, metrics,
concurrent conversations that never see each other's carry, SIGTERM + restart resuming a conversation,
the refusal to bind 0.0.0.0 without a token, and the command without the serve extra.

Tests that change the server's memory bank or tool catalogue come last in the module (the bank outlives
a test), and every other test uses only catalogue tools, so the in-process copies start from the same state.

Run: python -m pytest tests/test_serve.py -q
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from dexter_brain import UnifiedConsciousness  # noqa: E402
from dexter_brain.serve.app import ConversationQueue  # noqa: E402
from dexter_brain.serve.carries import fingerprints, load_carries, save_carries  # noqa: E402
from dexter_brain.wrappers.memory import MAX_K
from dexter_brain.wrappers.tool import MAX_TOOLS

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READY = re.compile(r"listening on (http://\S+) ")


class Server:
    """``python -m dexter_brain.serve`` in a subprocess on port 0; its output goes to a log file."""

    def __init__(self, models: Path, log: Path, *args: str):
        self.log, self.models = log, models
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dexter_brain.serve", "--models-dir", str(models), "--port", "0",
             "--workers", "2", "--save-every", "0", "--quiet", *args],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = READY.search(log.read_text())
            if found:
                self.url = found.group(1)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.process.kill()
        raise AssertionError(f"the server did not start:\n{log.read_text()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM, then the exit status (uvicorn re-raises the signal once it has shut down cleanly)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def plain(result) -> object:
    """A Python API result as it looks after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(result))


def same(got, expected, path: str = "") -> None:
    """``got == expected`` with floats equal to 1e-6: a tool's text vector is cached by the wrapper from the
    batch it was first encoded in, and batches of other sizes round the last bits differently."""
    if isinstance(expected, float) and isinstance(got, (int, float)):
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), path
    elif isinstance(expected, dict) and isinstance(got, dict):
        assert got.keys() == expected.keys(), path
        for key in expected:
            same(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(got, list):
        assert len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            same(g, e, f"{path}[{i}]")
    else:
        assert got == expected, path


def without_timings(turn: dict) -> dict:
    return {k: v for k, v in turn.items() if k != "timings_ms"}


def models_copy(tiny_brain, directory: Path) -> Path:
    """A copy of the tiny brain's models without its memory bank: a brain of its own (memories added to it are
    kept in its own bank file, never in the session's)."""
    if not directory.exists():
        shutil.copytree(tiny_brain["models"], directory, ignore=shutil.ignore_patterns("bank.sqlite*"))
    return directory


def fresh_brain(tiny_brain, tmp_path: Path) -> UnifiedConsciousness:
    return UnifiedConsciousness.from_dir(models_copy(tiny_brain, tmp_path / "models_copy"), device="cpu")


def start_server(tiny_brain, root: Path) -> Server:
    return Server(models_copy(tiny_brain, root / "models"), root / "server.log", "--token", TOKEN, "--carry-dir",
                  str(root / "carries"))


@pytest.fixture(scope="module")
def server(tiny_brain, tmp_path_factory):
    srv = start_server(tiny_brain, tmp_path_factory.mktemp("serve"))
    with httpx.Client(base_url=srv.url, headers=AUTH, timeout=60) as client:
        srv.client = client
        yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tools(tiny_brain) -> list[str]:
    """Five tools of the tiny brain's catalogue: known tools leave the catalogue as it is."""
    return UnifiedConsciousness.from_dir(tiny_brain["models"], device="cpu").tool.catalogue[:5]


# --- every endpoint, the same answers as in process ---------------------------------------------------------
def test_every_model_endpoint_answers_as_the_python_api(server, tiny_brain, tools, tmp_path):
    brain, c = fresh_brain(tiny_brain, tmp_path), server.client
    goal = "Plan an international trip"
    steps = [
        ("/v1/retrieve", {"query": "What did I buy from John Lewis?", "conversation_id": "eq-a"},
         lambda: brain.memory.retrieve("What did I buy from John Lewis?", conversation_id="eq-a")),
        ("/v1/retrieve", {"query": "tell me more", "k": 3, "conversation_id": "eq-a", "context": "orders"},
         lambda: brain.memory.retrieve("tell me more", k=3, conversation_id="eq-a", context="orders")),
        ("/v1/select_tool", {"task": "play some jazz", "available_tools": tools, "conversation_id": "eq-a"},
         lambda: brain.tool.select_tool("play some jazz", available_tools=tools, conversation_id="eq-a")),
        ("/v1/select_tool", {"task": "play some jazz", "available_tools": tools, "conversation_id": "eq-a",
                             "previous_error": "TimeoutError: no answer", "context": {"screen": "music"}},
         lambda: brain.tool.select_tool("play some jazz", available_tools=tools, conversation_id="eq-a",
                                        previous_error="TimeoutError: no answer", context={"screen": "music"})),
        ("/v1/plan", {"goal": goal, "conversation_id": "eq-b", "constraints": ["under 500 GBP"]},
         lambda: brain.reasoning.plan(goal, conversation_id="eq-b", constraints=["under 500 GBP"])),
        ("/v1/next_step", {"goal": goal, "completed": ["check passport validity"], "conversation_id": "eq-b"},
         lambda: brain.reasoning.next_step(goal, completed=["check passport validity"], conversation_id="eq-b")),
        ("/v1/turn", {"text": "When is my next dentist appointment?", "conversation_id": "eq-c"},
         lambda: brain.process("When is my next dentist appointment?", conversation_id="eq-c")),
        ("/v1/turn", {"text": "can you move it to friday?", "conversation_id": "eq-c", "available_tools": tools,
                      "context": "calendar open"},
         lambda: brain.process("can you move it to friday?", conversation_id="eq-c", available_tools=tools,
                               context="calendar open")),
    ]
    for path, body, in_process in steps:
        r = c.post(path, json=body)
        assert r.status_code == 200, (path, r.text)
        expected = plain(in_process())
        got = r.json()
        if path == "/v1/turn":
            assert set(got["timings_ms"]) >= {"memory", "tool", "total"}
            got, expected = without_timings(got), without_timings(expected)
        same(got, expected, path)


def test_reset_forgets_the_conversation_as_the_python_api_does(server, tiny_brain, tmp_path):
    brain, c = fresh_brain(tiny_brain, tmp_path), server.client
    c.post("/v1/retrieve", json={"query": "What did I buy from John Lewis?", "conversation_id": "rs"})
    brain.memory.retrieve("What did I buy from John Lewis?", conversation_id="rs")
    r = c.post("/v1/conversations/rs/reset")
    assert r.status_code == 200 and r.json() == {"conversation_id": "rs", "reset": True}
    brain.reset_conversation("rs")
    got = c.post("/v1/retrieve", json={"query": "tell me more", "conversation_id": "rs"}).json()
    same(got, plain(brain.memory.retrieve("tell me more", conversation_id="rs")))


def test_health_capabilities_and_docs(server, tiny_brain):
    health = httpx.get(f"{server.url}/health", timeout=30)  # no token needed
    assert health.status_code == 200
    body = health.json()
    assert body["alive"] is True and body["status"] == "ok"
    assert {k: m["loaded"] for k, m in body["models"].items()} == {"memory": True, "tool": True, "reasoning": True}
    caps = server.client.get("/v1/capabilities").json()
    expected = plain(UnifiedConsciousness.from_dir(server.models, device="cpu").capabilities())
    assert {k: v for k, v in caps.items() if k != "memory"} == {k: v for k, v in expected.items() if k != "memory"}
    assert caps["memory"]["operations"] == expected["memory"]["operations"]
    schema = server.client.get("/openapi.json").json()
    assert {"/v1/retrieve", "/v1/select_tool", "/v1/plan", "/v1/next_step", "/v1/turn", "/v1/memories",
            "/v1/memories/{memory_id}", "/v1/conversations/{conversation_id}/reset", "/health", "/metrics",
            "/v1/capabilities"} <= set(schema["paths"])
    assert server.client.get("/docs").status_code == 200


# --- the token -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}],
                         ids=["none", "wrong", "basic", "no-scheme"])
@pytest.mark.parametrize("method, path", [("POST", "/v1/retrieve"), ("GET", "/metrics"), ("GET", "/v1/capabilities"),
                                          ("DELETE", "/v1/memories/m-1"), ("GET", "/openapi.json")])
def test_without_the_right_token_the_answer_is_401(server, headers, method, path):
    r = httpx.request(method, f"{server.url}{path}", headers=headers, json={"query": "x"}, timeout=30)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in r.json()["detail"]


# --- malformed bodies --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, body, loc, message", [
    ("/v1/retrieve", {"k": 5}, ["body", "query"], "Field required"),
    ("/v1/retrieve", {"query": "x", "k": 0}, ["body", "k"], "greater than or equal to 1"),
    ("/v1/retrieve", {"query": "x", "k": MAX_K + 1}, ["body", "k"], f"less than or equal to {MAX_K}"),
    ("/v1/retrieve", {"query": "x", "k": "5"}, ["body", "k"], "valid integer"),
    ("/v1/retrieve", {"query": "x", "conversation_id": "a b"}, ["body", "conversation_id"], "match pattern"),
    ("/v1/retrieve", {"query": "x", "conversation_id": "c" * 129}, ["body", "conversation_id"], "match pattern"),
    ("/v1/retrieve", {"query": "x", "conversationId": "c1"}, ["body", "conversationId"], "Extra inputs"),
    ("/v1/retrieve", {"query": "q" * 8001}, ["body", "query"], "at most 8000"),
    ("/v1/select_tool", {"task": "x", "available_tools": []}, ["body", "available_tools"], "at least 1"),
    ("/v1/select_tool", {"task": "x", "available_tools": ["t"] * (MAX_TOOLS + 1)}, ["body", "available_tools"],
     f"at most {MAX_TOOLS}"),
    ("/v1/plan", {"goal": "x", "constraints": ["c"] * 65}, ["body", "constraints"], "at most 64"),
    ("/v1/next_step", {"goal": "x", "completed": "one step"}, ["body", "completed"], "valid list"),
    ("/v1/turn", {"text": 42}, ["body", "text"], "valid string"),
    ("/v1/memories", {"text": "x", "id": "no spaces please"}, ["body", "id"], "match pattern"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_a_malformed_body_gets_422_naming_the_field(server, path, body, loc, message):
    r = server.client.post(path, json=body)
    assert r.status_code == 422, r.text
    error = r.json()["detail"][0]
    assert error["loc"][: len(loc)] == loc and message in error["msg"]


@pytest.mark.parametrize("path, body, message", [
    ("/v1/retrieve", {"query": "   "}, "query is empty"),
    ("/v1/plan", {"goal": "x", "constraints": ["  "]}, "constraints[0] is empty"),
    ("/v1/select_tool", {"task": "x", "available_tools": [" "]}, "available_tools[0] has an empty name"),
    ("/v1/turn", {"text": "\t\n"}, "text is empty"),
])
def test_input_the_wrappers_reject_gets_422_with_their_message(server, path, body, message):
    r = server.client.post(path, json=body)
    assert r.status_code == 422
    assert r.json()["detail"] == [{"loc": ["body"], "msg": message, "type": "value_error"}]


def test_not_json_and_a_bad_path_id_get_422(server):
    r = server.client.post("/v1/retrieve", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = server.client.post("/v1/conversations/bad%20id/reset")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "conversation_id"]


def test_a_body_over_the_limit_gets_413_announced_or_streamed(server):
    big = json.dumps({"query": "x" * (1 << 20)}).encode()
    r = server.client.post("/v1/retrieve", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "at most 1048576 bytes" in r.json()["detail"]
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))  # no Content-Length: chunked
    r = server.client.post("/v1/retrieve", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413


# --- concurrency ---------------------------------------------------------------------------------------------------
def conversation_script(cid: str, i: int, tools: list[str]) -> list[tuple[str, dict]]:
    queries = ["What did I buy from John Lewis?", "When is my next dentist appointment?", "Who is Sam?",
               "What website projects do I have?", "When does my passport expire?", "What's Sam's phone number?"]
    return [
        ("/v1/retrieve", {"query": queries[i % len(queries)], "conversation_id": cid}),
        ("/v1/select_tool", {"task": "play some jazz", "available_tools": tools[: 2 + i % 3], "conversation_id": cid}),
        ("/v1/retrieve", {"query": "tell me more", "conversation_id": cid}),
        ("/v1/turn", {"text": queries[(i + 1) % len(queries)], "conversation_id": cid}),
    ]


def replay(brain: UnifiedConsciousness, path: str, body: dict):
    body = dict(body)
    if path == "/v1/retrieve":
        return brain.memory.retrieve(**body)
    if path == "/v1/select_tool":
        return brain.tool.select_tool(**body)
    return without_timings(brain.process(**body))


def test_concurrent_conversations_never_see_each_others_carry(tiny_brain, tools, tmp_path):
    # A server of its own: the shared one has learnt tools and memories from the other tests' calls.
    server = start_server(tiny_brain, tmp_path / "own")
    conversations = {f"ct-{i}": conversation_script(f"ct-{i}", i, tools) for i in range(6)}
    answers: dict[str, list] = {}
    failures: list = []

    def client(cid: str) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as c:
                answers[cid] = [c.post(path, json=body) for path, body in conversations[cid]]
        except Exception as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(cid,)) for cid in conversations]
    for t in threads:
        t.start()
    # The event loop is never blocked by the model calls: /health answers while they run.
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    for t in threads:
        t.join(timeout=120)
    server.stop()
    assert not failures
    brain = fresh_brain(tiny_brain, tmp_path)
    for cid, script in conversations.items():  # each conversation replayed alone, in process
        for (path, body), response in zip(script, answers[cid]):
            assert response.status_code == 200, response.text
            got = response.json()
            same(without_timings(got) if path == "/v1/turn" else got, plain(replay(brain, path, body)), cid)


def test_requests_of_one_conversation_wait_for_each_other_and_others_do_not():
    async def scenario() -> list[str]:
        queue, log = ConversationQueue(), []

        async def request(cid: str, name: str, seconds: float) -> None:
            async with queue.hold(cid):
                log.append(f"start {name}")
                await asyncio.sleep(seconds)
                log.append(f"end {name}")

        await asyncio.gather(request("a", "a1", 0.05), request("a", "a2", 0.0), request("b", "b1", 0.01))
        assert len(queue) == 0  # no lock is kept for a conversation with nothing in flight
        return log

    log = asyncio.run(scenario())
    assert log.index("end a1") < log.index("start a2")  # same conversation: one after the other, in order
    assert log.index("start b1") < log.index("end a1")  # another conversation: side by side


# --- metrics ---------------------------------------------------------------------------------------------------------
def test_metrics_count_calls_errors_latency_and_carries(server):
    server.client.post("/v1/retrieve", json={"query": "Who is Sam?", "conversation_id": "m-1"})
    server.client.post("/v1/retrieve", json={"k": 1})
    httpx.get(f"{server.url}/v1/capabilities", timeout=30)  # 401
    text = server.client.get("/metrics").text
    assert re.search(r'^dexter_brain_requests_total\{endpoint="/v1/retrieve"\} [1-9]', text, re.M)
    assert 'dexter_brain_request_errors_total{endpoint="/v1/retrieve",status="422"}' in text
    assert 'dexter_brain_request_errors_total{endpoint="/v1/capabilities",status="401"}' in text
    assert 'dexter_brain_request_seconds_bucket{endpoint="/v1/retrieve",le="0.005"}' in text
    held = {m.group(1): float(m.group(2)) for m in re.finditer(r'^dexter_brain_carries\{trm="(\w+)"\} (\S+)', text, re.M)}
    assert set(held) == {"memory", "tool", "reasoning"} and held["memory"] >= 1
    assert re.search(r"^dexter_brain_memories \d+", text, re.M)


# --- feedback ------------------------------------------------------------------------------------------------------
def test_feedback_on_a_turn_lands_in_the_feedback_directory_in_the_raw_format(server, tools):
    from dexter_brain.raw import RawStore

    c = server.client
    turn = c.post("/v1/turn", json={"text": "What did I buy from John Lewis?", "conversation_id": "fb-1",
                                    "available_tools": tools}).json()
    fact = turn["memory"]["memories"][0]["id"]
    r = c.post("/v1/feedback", json={"conversation_id": "fb-1", "used": [fact], "tool_status": "error",
                                     "tool_error": "HTTP 503"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["conversation_id"] == "fb-1" and body["plan"] is None
    assert body["memory"] == {"conversation_id": "fb-1", "query": "What did I buy from John Lewis?", "used": [fact],
                              "rejected": []}
    assert (body["tool"]["tool"], body["tool"]["status"], body["tool"]["error"]) == (
        turn["tool"]["selected_tool"], "error", "HTTP 503")
    store = RawStore.load(server.models / "feedback", show_progress_bar=False)
    conversation = next(conv for conv in store.conversations if conv.id == "fb-1")
    assert [(m.content, m.memory_refs) for m in conversation.messages] == [("What did I buy from John Lewis?",
                                                                            (fact,))]
    assert [(t.task, t.tool, t.status, t.error) for t in store.tool_calls if t.conversation_id == "fb-1"] == [
        ("What did I buy from John Lewis?", turn["tool"]["selected_tool"], "error", "HTTP 503")]


@pytest.mark.parametrize("body, status, message", [
    ({"conversation_id": "fb-none", "used": []}, 422, "conversation 'fb-none' has no retrieve to give feedback on"),
    ({"conversation_id": "fb-1", "used": ["no-such-fact"]}, 422, "unknown memory id(s) 'no-such-fact'"),
    ({"conversation_id": "fb-1"}, 422, "nothing to record: give used/rejected"),
    ({"conversation_id": "fb-1", "tool_status": "fine"}, 422, "Input should be 'success' or 'error'"),
    ({"conversation_id": "fb-1", "plan_success": "yes"}, 422, "valid boolean"),
    ({"used": []}, 422, "Field required"),
])
def test_bad_feedback_gets_422_with_the_reason(server, body, status, message):
    r = server.client.post("/v1/feedback", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"][0]["msg"]


# --- memories (these change the bank and the catalogue: keep them last among the tests on `server`) -----------------
def test_memories_add_remove_and_tool_descriptions_as_the_python_api(server, tiny_brain, tmp_path):
    brain, c = fresh_brain(tiny_brain, tmp_path), server.client
    fact = "The shop site runs on Shopify"
    r = c.post("/v1/memories", json={"text": fact, "id": "f-9001", "topic": "work", "source": "chat"})
    assert r.status_code == 201 and r.json() == {"id": "f-9001"}
    brain.memory.add_memory(fact, id="f-9001", topic="work", source="chat")
    r = c.post("/v1/memories", json={"text": "another text", "id": "f-9001"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    derived = c.post("/v1/memories", json={"text": "Sam's bike is blue"}).json()["id"]
    assert derived == brain.memory.add_memory("Sam's bike is blue")
    query = {"query": "What does the shop site run on?", "k": 100, "conversation_id": "mem-1"}
    got = c.post("/v1/retrieve", json=query).json()
    same(got, plain(brain.memory.retrieve(**query)))
    assert "f-9001" in [m["id"] for m in got["memories"]]
    assert c.delete("/v1/memories/f-9001").status_code == 204
    brain.memory.remove_memory("f-9001")
    r = c.delete("/v1/memories/f-9001")
    assert r.status_code == 404 and r.json()["detail"] == "no memory with id 'f-9001'"
    got = c.post("/v1/retrieve", json=query).json()
    same(got, plain(brain.memory.retrieve(**query)))
    assert "f-9001" not in [m["id"] for m in got["memories"]]
    offered = [{"name": "shop.update_site", "description": "change the Shopify shop site"}, "web.search"]
    task = {"task": "update the shop site", "available_tools": offered, "conversation_id": "mem-1"}
    got = c.post("/v1/select_tool", json=task).json()
    same(got, plain(brain.tool.select_tool(**task)))


# --- a brain with a part missing (in process: the app itself, through Starlette's test client) ---------------------
def test_a_missing_trm_gets_503_and_the_rest_still_serves(tiny_brain):
    from fastapi.testclient import TestClient

    from dexter_brain import MemoryTRM
    from dexter_brain.serve import ServeSettings, create_app

    brain = UnifiedConsciousness(memory=MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu"))
    with TestClient(create_app(brain, ServeSettings(workers=1))) as client:  # no carry dir: nothing persisted
        r = client.post("/v1/plan", json={"goal": "Plan a road trip"})
        assert r.status_code == 503 and r.json()["detail"] == "no reasoning TRM is loaded (not given)"
        assert client.post("/v1/select_tool", json={"task": "play music"}).status_code == 503
        turn = client.post("/v1/turn", json={"text": "Who is Sam?", "conversation_id": "p1"})
        assert turn.status_code == 200 and turn.json()["tool"] is None and turn.json()["plan"] is None
        r = client.post("/v1/feedback", json={"conversation_id": "p1", "plan_success": True})
        assert r.status_code == 503 and r.json()["detail"] == "no reasoning TRM is loaded (not given)"
        assert client.get("/health").json()["status"] == "degraded"


# --- restart ------------------------------------------------------------------------------------------------------------
def test_sigterm_saves_the_carries_and_a_restart_resumes_the_conversation(tiny_brain, tools, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_brain["models"], models)
    turns = ["What did I buy from John Lewis?", "tell me more about that one", "and how much was it?"]
    first = Server(models, tmp_path / "first.log")
    for text in turns[:2]:
        assert httpx.post(f"{first.url}/v1/turn", json={"text": text, "conversation_id": "r1"}, timeout=60).is_success
    assert first.stop() in (0, -signal.SIGTERM)
    carries = models / "carries"  # the default carry directory
    assert {p.name for p in carries.iterdir()} == {"memory.carry.safetensors", "tool.carry.safetensors",
                                                   "reasoning.carry.safetensors", "carries.json"}
    second = Server(models, tmp_path / "second.log")
    try:
        health = httpx.get(f"{second.url}/health", timeout=30).json()
        assert health["conversations"] == 1 and health["models"]["memory"]["conversations"] == 1
        resumed = httpx.post(f"{second.url}/v1/turn", json={"text": turns[2], "conversation_id": "r1"}, timeout=60)
    finally:
        second.stop()
    brain = fresh_brain(tiny_brain, tmp_path)  # the same three turns without a restart
    for text in turns[:2]:
        brain.process(text, conversation_id="r1")
    uninterrupted = brain.process(turns[2], conversation_id="r1")
    same(without_timings(resumed.json()), plain(without_timings(uninterrupted)))
    fresh = fresh_brain(tiny_brain, tmp_path / "fresh").process(turns[2], conversation_id="r1")
    assert without_timings(resumed.json())["memory"] != plain(fresh["memory"])  # the carry made a difference


def test_carries_saved_with_other_weights_are_not_resumed(tiny_brain, tmp_path):
    brain = fresh_brain(tiny_brain, tmp_path)
    brain.process("Who is Sam?", conversation_id="w1")
    current = fingerprints(brain)
    assert save_carries(brain, tmp_path / "carries", current) == 1
    restarted = fresh_brain(tiny_brain, tmp_path)
    assert load_carries(restarted, tmp_path / "carries", current) == {"memory": 1, "tool": 1, "reasoning": 1}
    retrained = {**current, "tool": "0" * 64}
    other = fresh_brain(tiny_brain, tmp_path)
    assert load_carries(other, tmp_path / "carries", retrained) == {"memory": 1, "reasoning": 1}
    assert other.health()["models"]["tool"]["conversations"] == 0
    assert load_carries(other, tmp_path / "nowhere", current) == {}


# --- the command --------------------------------------------------------------------------------------------------------
def run_command(args: list[str], code: str = "") -> subprocess.CompletedProcess:
    script = f"import sys\n{code}\nfrom dexter_brain.cli import main\nsys.exit(main({['serve', *args]!r}))"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k != "DEXTER_BRAIN_TOKEN"},
                               "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_a_public_address_without_a_token_is_refused(tiny_brain, host):
    done = run_command(["--models-dir", str(tiny_brain["models"]), "--host", host])
    assert done.returncode == 1
    assert done.stderr == (f"error: host {host} is not a loopback address: serving on it needs a token "
                           "(--token or DEXTER_BRAIN_TOKEN), or bind 127.0.0.1\n")


def test_a_short_token_and_a_taken_port_are_one_line_errors(tiny_brain):
    done = run_command(["--models-dir", str(tiny_brain["models"]), "--token", "short"])
    assert done.returncode == 1 and done.stderr.startswith("error: token is 5 characters: use at least 16")
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_command(["--models-dir", str(tiny_brain["models"]), "--port", str(port), "--quiet"])
    assert done.returncode == 1 and done.stderr == f"error: cannot bind 127.0.0.1:{port}: Address already in use\n"


def test_a_missing_models_dir_is_a_one_line_error(tmp_path):
    done = run_command(["--models-dir", str(tmp_path / "none"), "--quiet"])
    assert done.returncode == 1 and done.stderr == f"error: models directory not found: {tmp_path / 'none'}\n"


def test_without_the_serve_extra_the_command_says_how_to_install_it_and_the_sdk_still_imports():
    block = "sys.modules.update(fastapi=None, uvicorn=None, prometheus_client=None)"  # as if not installed
    done = run_command(["--models-dir", "models"], code=block)
    assert done.returncode == 1
    assert done.stderr == ("error: dexter-brain serve needs fastapi, uvicorn, prometheus_client: install the extra "
                           "with python -m pip install 'dexter-brain[serve]' (or -e \".[serve]\" in a checkout)\n")
    code = (f"import sys\n{block}\nimport dexter_brain.serve\nfrom dexter_brain import UnifiedConsciousness, MemoryTRM\n"
            "from dexter_brain.serve import ServeSettings\nprint(ServeSettings().url)")
    imported = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "http://127.0.0.1:8765\n"
