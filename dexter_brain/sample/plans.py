"""Plans: goal -> ordered steps, as brain.db ``patterns`` and as d2_memory ``summaries`` of planning chats.

Every plan is drawn from a family in ``plan_library``: a paraphrased goal, slot values, optional steps kept or
dropped, alternative wordings, and groups of steps whose order does not matter shuffled.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

from dexter_brain.sample import noise
from dexter_brain.sample import plan_library as L
from dexter_brain.sample import values as V

PATTERNS_PER_SCALE = 350
PLAN_CHATS_PER_SCALE = 60
"""Planning conversations in d2_memory.json, each with a summary holding its goal and steps."""


def draw_plan(r: random.Random, family: dict) -> tuple[str, list[str]]:
    """One goal and its steps from ``family``."""
    slots = {k: r.choice(v) for k, v in {**family["slots"], **family.get("extra", {})}.items()}
    goal = r.choice(family["goals"]).format(**slots)
    steps: list[str] = []
    for item in family["steps"]:
        if isinstance(item, list):
            group = [s for s in (_step(r, x, slots) for x in item) if s]
            r.shuffle(group)
            steps += group
        else:
            s = _step(r, item, slots)
            if s:
                steps.append(s)
    if len(steps) < 2:  # a plan is at least two steps; keep the first two required ones
        steps = [_step(r, x.lstrip("?"), slots) for x in _flat(family["steps"])][:2]
    return goal, steps


def _flat(items: list) -> list[str]:
    return [x for item in items for x in (item if isinstance(item, list) else [item])]


def _step(r: random.Random, spec: str, slots: dict) -> str | None:
    if spec.startswith("??"):
        if r.random() > 0.25:
            return None
    elif spec.startswith("?"):
        if r.random() > 0.5:
            return None
    options = [s.lstrip("?") for s in spec.split("|")]
    return r.choice(options).format(**slots)


def patterns(seed: int, scale: float) -> Iterator[dict]:
    """brain.db ``patterns`` rows, in a fixed order."""
    r = random.Random(f"{seed}:patterns")
    weights = [r.paretovariate(1.6) for _ in L.FAMILIES]
    for n in range(round(PATTERNS_PER_SCALE * scale)):
        family = r.choices(L.FAMILIES, weights=weights)[0]
        goal, steps = draw_plan(r, family)
        if r.random() < 0.25:
            goal = noise.humanize(r, goal, question=False, lower_rate=0.6, typo_rate=0.15)
        created = V.BASE_TIME + timedelta(days=r.uniform(0, V.SPAN_DAYS), hours=r.uniform(7, 16))
        yield {"id": f"pat_{r.getrandbits(48):012x}", "goal": goal, "steps": steps,
               "success_count": _times_used(r), "created_at": created.strftime("%Y-%m-%d %H:%M:%S")}


def _times_used(r: random.Random) -> int:
    """Most plans were used once or twice, a few routines many times."""
    n = int(r.paretovariate(1.4))
    return n if n <= 20 else r.randint(12, 20)


_ASK = ["{g}", "can you help me {gl}", "i need to {gl}, where do I start", "make me a plan to {gl}",
        "help me {gl} pls", "what are the steps to {gl}", "{g} - plan?", "I want to {gl}"]
_INTRO = ["Here's a plan:", "Sure - step by step:", "OK, I'd do it in this order:", "Plan:"]
_FOLLOW = [("thanks, perfect", "Good luck!"), ("can you save that", "Saved. I'll remember this plan."),
           ("that's a lot lol", "Take it one step at a time - the first one only takes ten minutes."),
           ("what should I do first", "Start with: {s0}.")]


def planning_chats(seed: int, scale: float) -> Iterator[tuple[dict, dict]]:
    """Yield ``(conversation, summary)`` pairs for d2_memory.json; the summary points at the conversation."""
    r = random.Random(f"{seed}:planning")
    for n in range(round(PLAN_CHATS_PER_SCALE * scale)):
        family = r.choice(L.FAMILIES)
        goal, steps = draw_plan(r, family)
        start = V.BASE_TIME + timedelta(days=r.uniform(0, V.SPAN_DAYS), hours=r.uniform(8, 22))
        gl = goal[0].lower() + goal[1:]
        ask = noise.humanize(r, r.choice(_ASK).format(g=goal, gl=gl), question=False)
        plan_text = r.choice(_INTRO) + "\n" + "\n".join(f"{i}. {noise.capfirst(s)}" for i, s in enumerate(steps, 1))
        cid = f"c_{r.getrandbits(64):016x}"
        times = [start + timedelta(seconds=k * r.randint(5, 60)) for k in range(4)]
        messages = [{"role": "user", "content": ask, "ts": _iso(times[0]), "memory_refs": []},
                    {"role": "assistant", "content": plan_text, "ts": _iso(times[1])}]
        if r.random() < 0.5:
            q, a = r.choice(_FOLLOW)
            messages += [{"role": "user", "content": noise.humanize(r, q, question=False), "ts": _iso(times[2]),
                          "memory_refs": []},
                         {"role": "assistant", "content": a.format(s0=steps[0]), "ts": _iso(times[3])}]
        conv = {"id": cid, "title": goal[:40], "started_at": _iso(start), "messages": messages}
        text = (f"Alex asked for help to {gl.rstrip('.')}. Agreed a {len(steps)}-step plan, starting with "
                f"'{steps[0]}' and ending with '{steps[-1]}'.")
        yield conv, {"conversation_id": cid, "text": text, "goal": goal, "steps": steps}


def _iso(t) -> str:
    return t.replace(microsecond=0).isoformat() + "Z"
