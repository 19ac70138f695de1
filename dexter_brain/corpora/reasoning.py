"""Mine the reasoning corpus: goal -> ordered steps, and (goal, completed steps) -> next step or done.

Plans come from ``brain.db`` ``patterns`` and from ``summaries`` that carry a goal and steps. Each plan
gives one ``plan`` example and one ``next`` example per prefix (the last one's answer is "done"); the
plan and its prefixes form one episode, so the carry of ``plan`` reaches the ``next_step`` calls.

Complexity is derived from the plan's length: **simple** (1-3 steps), **moderate** (4-6 steps),
**complex** (7 or more steps).
"""

from __future__ import annotations

import logging

from dexter_brain.schema import COMPLEXITY_LEVELS, ReasoningExample, complexity_of
from dexter_brain.lexical import normalize
from dexter_brain.raw import RawStore

logger = logging.getLogger(__name__)

def mine_reasoning(store: RawStore) -> list[ReasoningExample]:
    plans: list[tuple[str, str, str | None, tuple[str, ...], str]] = []  # id, goal, state, steps, source
    for p in store.patterns:
        plans.append((f"pattern:{p.id}", p.goal, None, p.steps, str(p.provenance)))
    for i, s in enumerate(store.summaries):
        if s.goal and s.steps:
            plans.append((f"summary:{s.conversation_id or i}", s.goal, s.text or None, s.steps, str(s.provenance)))
    examples: list[ReasoningExample] = []
    seen_ids: set[str] = set()
    for plan_id, goal, state, raw_steps, source in plans:
        steps = tuple(s.strip() for s in raw_steps if s and s.strip())
        if not goal.strip() or not steps:
            continue
        while plan_id in seen_ids:
            plan_id += "+"
        seen_ids.add(plan_id)
        complexity = complexity_of(len(steps))
        common = dict(episode=plan_id, group=f"goal:{normalize(goal)}", source=source, goal=goal.strip(),
                      state=state, complexity=complexity, plan_id=plan_id,
                      difficulty=COMPLEXITY_LEVELS.index(complexity))
        examples.append(ReasoningExample(id=f"plan:{plan_id}", turn=0, kind="plan", steps=steps, **common))
        for k in range(len(steps) + 1):
            examples.append(ReasoningExample(
                id=f"next:{plan_id}:{k}", turn=k + 1, kind="next", completed=steps[:k],
                next_step=steps[k] if k < len(steps) else None, **common,
            ))
    logger.info("reasoning: %d plans, %d examples", len(plans), len(examples))
    return examples
