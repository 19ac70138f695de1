"""Tests for dexter_brain.model and the id-level inference core (dexter_brain.inference) on tiny random inputs:
the recursion runs T * (n + 1) network calls per supervision step with gradient only in the last improvement
step, outputs have the documented shapes, the carry changes the output, halting is per example, and inference
is deterministic; an untrained model scores exactly its linear floor, and a floor-only model never recurses.

Most tests give the residual's zero-initialised output layers random weights first (as training would), so
that the recursion shows in the scores.

Cycles are counted by wrapping ``model.net.forward`` (instrumentation: the real network still runs).
Run: python -m pytest tests/test_model.py -q   (about a second)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dexter_brain.config import ModelConfig
from dexter_brain.floor import LinearFloor
from dexter_brain.inference import halting_call, think
from dexter_brain.model import NUM_COMPLEXITY_CLASSES, RecursiveModel

B, K = 3, 5  # batch rows, candidates


def tiny_config(kind: str = "memory", **fields) -> ModelConfig:
    return ModelConfig(**{**ModelConfig.tiny(kind).model_dump(), **fields})


def make_model(kind: str = "memory", seed: int = 0, trained: bool = True, **fields) -> RecursiveModel:
    """A tiny model; ``trained`` gives the residual's output layers (zero at initialisation) random weights."""
    torch.manual_seed(seed)
    model = RecursiveModel(tiny_config(kind, **fields))
    if trained:
        with torch.no_grad():
            torch.nn.init.normal_(model.score_out.weight)
            model.dense_scale.fill_(3.0)
            if model.null is not None:
                torch.nn.init.normal_(model.null.weight)
    return model


def random_floor(model: RecursiveModel, seed: int = 4) -> LinearFloor:
    g = np.random.default_rng(seed)
    F, M = model.config.num_candidate_features, model.config.num_modes
    return LinearFloor(tuple(f"f{i}" for i in range(F)), g.normal(size=F), g.uniform(0.5, 2, size=F),
                       g.normal(size=(M, F)), g.normal(size=M))


def make_batch(config: ModelConfig, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    L, C = config.max_query_len, config.max_candidate_len
    query_ids = torch.randint(1, config.vocab_size, (B, L), generator=g)
    query_ids[:, L // 2:] = 0  # padding
    cand_ids = torch.randint(1, config.vocab_size, (B, K, C), generator=g)
    cand_ids[..., C // 2:] = 0
    cand_mask = torch.ones(B, K, dtype=torch.bool)
    cand_mask[0, -2:] = False  # row 0 has only K-2 candidates
    return {"query_ids": query_ids, "query_feats": torch.rand(B, config.num_query_features, generator=g),
            "cand_ids": cand_ids, "cand_feats": torch.rand(B, K, config.num_candidate_features, generator=g),
            "cand_mask": cand_mask}


class CallRecorder:
    """Wraps ``model.net.forward``: counts calls and records whether autograd was on for each."""

    def __init__(self, model: RecursiveModel):
        self.grad_enabled: list[bool] = []
        inner = model.net.forward

        def forward(h):
            self.grad_enabled.append(torch.is_grad_enabled())
            return inner(h)

        model.net.forward = forward

    @property
    def calls(self) -> int:
        return len(self.grad_enabled)


# --- the recursion ------------------------------------------------------------------------------------
@pytest.mark.parametrize("T, n", [(1, 1), (2, 2), (3, 4)])
def test_one_supervision_step_runs_T_improvement_steps_with_grad_only_in_the_last(T, n):
    model = make_model(num_improvement_steps=T, num_latent_updates=n)
    calls = CallRecorder(model)
    model(make_batch(model.config))
    assert calls.calls == T * (n + 1) == model.config.calls_per_supervision_step
    assert calls.grad_enabled == [False] * ((T - 1) * (n + 1)) + [True] * (n + 1)


def test_num_improvement_steps_argument_overrides_the_config():
    model = make_model(num_improvement_steps=2, num_latent_updates=2)
    calls = CallRecorder(model)
    model(make_batch(model.config), num_improvement_steps=4)
    assert calls.grad_enabled == [False] * 9 + [True] * 3


@pytest.mark.parametrize("T, reaches_start", [(1, True), (2, False), (3, False)])
def test_gradient_reaches_the_starting_state_only_without_earlier_improvement_steps(T, reaches_start):
    # The first T-1 improvement steps run under no_grad, so the incoming (y, z) gets no gradient through them.
    model = make_model(num_improvement_steps=T)
    y0, z0 = (s.detach().clone().requires_grad_(True) for s in model.initial_state(B))
    out = model(make_batch(model.config), (y0, z0))
    out.y.sum().backward()
    assert (y0.grad is not None) == reaches_start
    assert all(p.grad is not None for p in model.net.parameters())  # the last step trains f


def test_halting_call_runs_max_steps_supervision_steps_when_nothing_halts():
    model = make_model().eval()
    calls = CallRecorder(model)
    with torch.inference_mode():
        result = halting_call(model, make_batch(model.config), None, max_steps=3)
    assert result.steps.tolist() == [3] * B  # the halting head starts near "never halt"
    assert calls.calls == 3 * model.config.calls_per_supervision_step
    assert not any(calls.grad_enabled)


def test_halting_head_starts_at_weight_0_bias_minus_5():
    model = make_model()
    assert torch.count_nonzero(model.halt.weight) == 0 and float(model.halt.bias.detach()) == -5.0
    out = model(make_batch(model.config))
    torch.testing.assert_close(torch.sigmoid(out.halt_logit), torch.full((B,), torch.sigmoid(torch.tensor(-5.0))))


def test_one_training_step_gives_every_parameter_a_gradient():
    model = make_model()  # tiny: T = 2 (with a nonzero residual output: at zero nothing behind it gets a gradient)
    out = model(make_batch(model.config))
    loss = out.scores.masked_fill(~torch.isfinite(out.scores), 0).sum() + out.halt_logit.sum() \
        + out.null_score.sum() + out.z.sum()
    loss.backward()
    assert [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


# --- outputs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "tool", "reasoning"])
@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_outputs_have_the_documented_shapes(kind, mixer):
    model = make_model(kind, mixer=mixer)
    c = model.config
    out = model(make_batch(c))
    assert out.y.shape == out.z.shape == (B, c.num_slots, c.hidden_size)
    assert out.scores.shape == (B, K) and out.halt_logit.shape == out.null_score.shape == (B,)
    assert out.query_vec.shape == (B, c.hidden_size)
    torch.testing.assert_close(out.query_vec.norm(dim=-1), torch.ones(B))
    assert torch.isinf(out.scores[0, -2:]).all() and torch.isfinite(out.scores[1:]).all()
    assert (out.fail_logit is not None) == (kind == "tool")
    assert (out.position is not None) == (out.complexity_logits is not None) == (kind == "reasoning")
    if kind == "tool":
        assert out.fail_logit.shape == (B, K)
    if kind == "reasoning":
        assert out.position.shape == (B, K) and ((out.position >= 0) & (out.position <= 1)).all()
        assert out.complexity_logits.shape == (B, NUM_COMPLEXITY_CLASSES)
    if kind != "memory":
        assert torch.count_nonzero(out.null_score) == 0


def test_precomputed_candidate_vectors_score_like_candidate_ids():
    model = make_model().eval()
    batch = make_batch(model.config)
    with torch.no_grad():
        from_ids = model(batch)
        vecs = model.encode_candidates(batch["cand_ids"])
        from_vecs = model({**{k: v for k, v in batch.items() if k != "cand_ids"}, "cand_vecs": vecs})
    torch.testing.assert_close(from_vecs.scores, from_ids.scores)


def test_an_empty_query_gives_finite_outputs():
    model = make_model()
    batch = make_batch(model.config)
    batch["query_ids"][1] = 0
    out = model(batch)
    assert torch.isfinite(out.y).all() and torch.isfinite(out.scores[1]).all()


# --- carry, halting, determinism ------------------------------------------------------------------------
def test_carry_changes_the_output_and_the_initial_state_is_the_fresh_output():
    model = make_model().eval()
    batch = make_batch(model.config)
    with torch.inference_mode():
        fresh = halting_call(model, batch, None, max_steps=2)
        carried = halting_call(model, batch, (fresh.out.y, fresh.out.z), max_steps=2)
        explicit_initial = halting_call(model, batch, model.initial_state(B), max_steps=2)
    assert not torch.allclose(carried.out.scores[1:], fresh.out.scores[1:])
    assert not torch.allclose(carried.out.y, fresh.out.y)
    assert torch.equal(explicit_initial.out.scores, fresh.out.scores)


def test_inference_is_deterministic_for_the_same_input_and_carry():
    model = make_model().eval()
    batch = make_batch(model.config)
    g = torch.Generator().manual_seed(5)
    carry = tuple(torch.randn(B, 2, 32, generator=g) for _ in range(2))
    with torch.inference_mode():
        a = halting_call(model, batch, carry, max_steps=3)
        b = halting_call(model, batch, tuple(c.clone() for c in carry), max_steps=3)
    for name in ("scores", "y", "z", "halt_logit", "null_score", "query_vec"):
        assert torch.equal(getattr(a.out, name), getattr(b.out, name)), name
    assert torch.equal(a.steps, b.steps)


def halting_model() -> tuple[RecursiveModel, dict, tuple[torch.Tensor, torch.Tensor]]:
    """A model, batch and carry for which the halting head fires at different steps for different rows."""
    model = make_model(seed=3).eval()
    with torch.no_grad():
        model.halt.weight.copy_(torch.randn(model.halt.weight.shape, generator=torch.Generator().manual_seed(2)))
        model.halt.bias.fill_(0.0)
    g = torch.Generator().manual_seed(11)
    shape = (B, model.config.num_slots, model.config.hidden_size)
    return model, make_batch(model.config, seed=7), (torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def test_halting_is_per_example_and_independent_of_the_batch():
    model, batch, (y0, z0) = halting_model()
    with torch.inference_mode():
        together = halting_call(model, batch, (y0, z0), max_steps=4, threshold=0.5)
        alone = [halting_call(model, {k: v[i:i + 1] for k, v in batch.items()}, (y0[i:i + 1], z0[i:i + 1]),
                              max_steps=4, threshold=0.5) for i in range(B)]
    assert len(set(together.steps.tolist())) > 1  # the rows really halt at different steps
    assert together.steps.tolist() == [int(r.steps) for r in alone]
    for i, r in enumerate(alone):
        torch.testing.assert_close(together.out.y[i:i + 1], r.out.y)
        torch.testing.assert_close(together.out.z[i:i + 1], r.out.z)
        torch.testing.assert_close(together.out.scores[i:i + 1], r.out.scores)


@pytest.mark.parametrize("threshold", [0.01, 0.5, 0.99])
def test_think_stops_each_row_at_its_first_step_over_the_threshold(threshold):
    model, batch, carry = halting_model()
    with torch.inference_mode():
        x = model.read(batch["query_ids"], batch["query_feats"])
        y, z, steps = think(model, x, carry, max_steps=4, threshold=threshold)
        # Replay by hand: the state after each supervision step, and the first step whose halting
        # probability passes the threshold (or the step limit).
        state, expected, ys = carry, [4] * B, []
        for step in range(1, 5):
            state = model.recurse(x, *state)
            ys.append(state[0])
            halts = torch.sigmoid(model.halt_logit(state[0])) > threshold
            expected = [min(e, step) if h else e for e, h in zip(expected, halts.tolist())]
    assert steps.tolist() == expected
    for i, s in enumerate(expected):
        torch.testing.assert_close(y[i], ys[s - 1][i])


def test_text_keep_zero_scores_by_features_alone():
    # With the text-match terms off, a row's scores no longer depend on the candidates' texts; rows kept
    # score exactly as without text_keep.
    model = make_model("reasoning").eval()
    batch = make_batch(model.config)
    other = {**batch, "cand_ids": torch.flip(batch["cand_ids"], dims=[1])}
    keep = torch.tensor([0.0] + [1.0] * (B - 1))
    with torch.no_grad():
        plain = model(batch).scores
        a = model({**batch, "text_keep": keep}).scores
        b = model({**other, "text_keep": keep}).scores
    torch.testing.assert_close(a[0], b[0])
    assert not torch.allclose(plain[0][:K - 2], a[0][:K - 2])
    torch.testing.assert_close(a[1:], plain[1:])


# --- the floor and the residual -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memory", "tool", "reasoning"])
def test_an_untrained_model_scores_exactly_its_floor(kind):
    model = make_model(kind, trained=False, num_modes=2 if kind == "reasoning" else 1).eval()
    floor = random_floor(model)
    model.set_floor(floor)
    batch = make_batch(model.config)
    mode = torch.tensor([0, 1, 1]) if kind == "reasoning" else None
    with torch.no_grad():
        out = model({**batch, **({"mode": mode} if mode is not None else {})})
    expected = floor.scores(batch["cand_feats"].numpy(), mode.numpy() if mode is not None else 0)
    expected = np.where(batch["cand_mask"].numpy(), expected, -np.inf)
    np.testing.assert_allclose(out.scores.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert torch.count_nonzero(out.null_score) == 0


def test_without_the_residual_a_call_scores_the_floor_and_never_recurses():
    model = make_model().eval()
    model.set_floor(random_floor(model))
    batch = make_batch(model.config)
    with torch.inference_mode():
        full = halting_call(model, batch, None, max_steps=2)
        model.use_residual = False
        calls = CallRecorder(model)
        alone = halting_call(model, batch, None, max_steps=2)
    assert calls.calls == 0 and alone.steps.tolist() == [0] * B
    torch.testing.assert_close(alone.out.scores, model.floor_scores(batch["cand_feats"]).masked_fill(
        ~batch["cand_mask"], float("-inf")))
    assert not torch.allclose(full.out.scores[1:], alone.out.scores[1:])


def test_set_floor_refuses_a_floor_of_other_features():
    model = make_model()
    wrong = LinearFloor.neutral(["a"] * (model.config.num_candidate_features + 1))
    with pytest.raises(ValueError, match="features"):
        model.set_floor(wrong)
