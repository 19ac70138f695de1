"""The Tiny Recursive Model: one recursive core, a candidate scorer and the heads of each TRM kind.

The core follows the TRM paper: an input embedding ``x``, an answer state ``y`` (z_H) and a latent state
``z`` (z_L), all (B, S, D) over S latent slots. One network ``f`` does every update:
``z = f(z + y + x)`` n times, then ``y = f(y + z)``; that is one improvement step, and T of them make
one supervision step, the first T-1 without gradient. A halting head reads ``y``. The final (y, z) of a
call is the *carry* a conversation's next call can start from.

Answers are rankings over candidates (stored facts, available tools, plan steps), so the model never
invents an item. A candidate's score is wide and deep: the *floor*, a linear model over its hand-made
features fitted by logistic regression before training (``dexter_brain.floor``; fixed buffers here,
never trained), plus the recursive *residual* read from the answer state, the candidate's text encoding
and its features. The residual's output layers start at zero, so an untrained model is exactly its
floor; ``use_residual = False`` (chosen by the build when the residual does not beat the floor on
validation) scores with the floor alone. New facts or tools are scored by their text, no retraining.

Shape key: B batch, L query tokens, K candidates, C tokens per candidate, S latent slots, D hidden,
E token embedding width, F candidate features, G query features, H scorer width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dexter_brain.config import ModelConfig
from dexter_brain.floor import LinearFloor

NUM_COMPLEXITY_CLASSES = 3  # simple, moderate, complex


def rms_norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    # RMSNorm without a learned scale, as in the TRM reference (one fused op: inference is op-bound).
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


class SwiGLU(nn.Module):
    def __init__(self, *, dim: int, hidden: int):
        super().__init__()
        self.w_in = nn.Linear(dim, 2 * hidden, bias=False)
        self.w_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        gate, up = self.w_in(h).chunk(2, dim=-1)
        return self.w_out(F.silu(gate) * up)


class SlotAttention(nn.Module):
    """Self-attention across latent slots (no positions: slots differ by content and initial state)."""

    def __init__(self, *, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        B, S, D = h.shape
        q, k, v = self.qkv(h).view(B, S, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(q, k, v)  # (B, heads, S, D/heads)
        return self.out(mixed.transpose(1, 2).reshape(B, S, D))


class SlotMLPMixer(nn.Module):
    """Mixes information across the fixed number of slots with one linear map over the slot axis."""

    def __init__(self, *, num_slots: int):
        super().__init__()
        self.mix = nn.Linear(num_slots, num_slots, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return self.mix(h.transpose(1, 2)).transpose(1, 2)


class Block(nn.Module):
    """Post-norm block: h = norm(h + mix(h)); h = norm(h + swiglu(h))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.mixer == "attention":
            self.mix = SlotAttention(dim=config.hidden_size, num_heads=config.num_heads)
        else:
            self.mix = SlotMLPMixer(num_slots=config.num_slots)
        self.mlp = SwiGLU(dim=config.hidden_size, hidden=config.swiglu_hidden)

    def forward(self, h: Tensor) -> Tensor:
        h = rms_norm(h + self.mix(h))
        return rms_norm(h + self.mlp(h))


class RecursiveNet(nn.Module):
    """The one small network f used for every latent and answer update."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))

    def forward(self, h: Tensor) -> Tensor:
        for block in self.blocks:
            h = block(h)
        return h


class InputReader(nn.Module):
    """Turns query tokens (+ query features) into the input embedding x over S slots.

    S learned slot queries cross-attend to the position-tagged token embeddings; the query features are
    added to every slot.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        D, E = config.hidden_size, config.embed_dim
        self.num_heads = config.num_heads
        self.token_proj = nn.Linear(E, D, bias=False)
        self.positions = nn.Parameter(torch.randn(config.max_query_len, D) * 0.02)
        self.slot_queries = nn.Parameter(torch.randn(config.num_slots, D) * 0.02)
        self.kv = nn.Linear(D, 2 * D, bias=False)
        self.q = nn.Linear(D, D, bias=False)
        self.out = nn.Linear(D, D, bias=False)
        self.meta = nn.Linear(config.num_query_features, D) if config.num_query_features else None

    def forward(self, embedded: Tensor, query_ids: Tensor, query_feats: Tensor | None) -> Tensor:
        B, L = query_ids.shape
        tokens = self.token_proj(embedded) + self.positions[:L]  # (B, L, D)
        tokens = rms_norm(tokens)
        D, heads = tokens.shape[-1], self.num_heads
        k, v = self.kv(tokens).view(B, L, 2, heads, D // heads).permute(2, 0, 3, 1, 4)  # (B, h, L, D/h)
        q = self.q(self.slot_queries).view(1, -1, heads, D // heads).transpose(1, 2).expand(B, -1, -1, -1)
        # Every row keeps at least one visible key (the first position), so empty queries stay finite.
        visible = (query_ids != 0).clone()
        visible[:, 0] = True
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=visible[:, None, None, :])  # (B, h, S, D/h)
        x = self.out(x.transpose(1, 2).reshape(B, -1, D))  # (B, S, D)
        if self.meta is not None and query_feats is not None:
            x = x + self.meta(query_feats)[:, None, :]
        return rms_norm(x)


class CandidateEncoder(nn.Module):
    """Bag-of-tokens text encoder for candidates; cheap enough to precompute a whole fact bank."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.proj = nn.Linear(config.embed_dim, config.hidden_size, bias=False)
        self.mlp = SwiGLU(dim=config.hidden_size, hidden=config.hidden_size)

    def forward(self, embedded: Tensor, cand_ids: Tensor) -> Tensor:
        mask = (cand_ids != 0).unsqueeze(-1).float()  # (..., C, 1)
        summed = (embedded * mask).sum(-2)
        pooled = summed / mask.sum(-2).clamp(min=1.0)  # (..., E)
        h = rms_norm(self.proj(pooled))
        return rms_norm(h + self.mlp(h))  # (..., D)


@dataclass
class StepOutput:
    """What one supervision step returns."""

    y: Tensor
    """Answer state (B, S, D) after the step."""
    z: Tensor
    """Latent state (B, S, D) after the step."""
    scores: Tensor
    """Candidate scores (B, K); masked candidates are -inf."""
    null_score: Tensor
    """Score of "nothing relevant" (B,) (memory abstention); zeros for other kinds."""
    halt_logit: Tensor
    """Halting logit (B,); halt when sigmoid(halt_logit) passes the threshold."""
    query_vec: Tensor | None
    """Unit query vector (B, D) read from y (None when scoring with the floor alone)."""
    cand_vecs: Tensor | None = None
    """The candidate encodings (B, K, D) that were scored."""
    fail_logit: Tensor | None = None
    """Tool kind: per-candidate logit that calling it fails (B, K)."""
    position: Tensor | None = None
    """Reasoning kind: predicted relative position in the plan (B, K), 0..1."""
    complexity_logits: Tensor | None = None
    """Reasoning kind: (B, 3) logits for simple / moderate / complex."""


class RecursiveModel(nn.Module):
    """A TRM of one kind: reader, recursive core, halting head, candidate encoder and scorer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        D, H, S = config.hidden_size, config.scorer_hidden, config.num_slots
        self.token_embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.reader = InputReader(config)
        self.net = RecursiveNet(config)
        # Fixed random initial states, as in the TRM reference: with T > 1 they only enter the gradient-free
        # improvement steps, so as parameters they would never learn (and DDP would reject them).
        self.register_buffer("init_y", torch.randn(S, D) * 0.02)
        self.register_buffer("init_z", torch.randn(S, D) * 0.02)
        self.halt = nn.Linear(D, 1)
        self.candidates = CandidateEncoder(config)
        self.query_proj = nn.Linear(D, D, bias=False)
        self.dense_scale = nn.Parameter(torch.zeros(()))
        self.feat_in = nn.Linear(config.num_candidate_features, H)
        self.inter_in = nn.Linear(D, H, bias=False)
        self.state_in = nn.Linear(D, H, bias=False)
        self.score_out = nn.Linear(H, 1)
        self.null = nn.Linear(D, 1) if config.kind == "memory" else None
        # The linear floor (not trained, not in the weights file: it is fitted before training and kept in the
        # checkpoint's scorer.json). M modes: one set of weights per mode (reasoning: plan, next step).
        F, M = config.num_candidate_features, config.num_modes
        self.register_buffer("floor_mean", torch.zeros(F), persistent=False)
        self.register_buffer("floor_std", torch.ones(F), persistent=False)
        self.register_buffer("floor_weight", torch.zeros(M, F), persistent=False)
        self.register_buffer("floor_bias", torch.zeros(M), persistent=False)
        self.floor: LinearFloor = LinearFloor.neutral([f"f{i}" for i in range(F)], M)
        self.use_residual = True
        """Score with floor + residual (True) or the floor alone (False: the residual did not help)."""
        self.fail = nn.Linear(H, 1) if config.kind == "tool" else None
        self.position = nn.Linear(H, 1) if config.kind == "reasoning" else None
        self.complexity = nn.Linear(D, NUM_COMPLEXITY_CLASSES) if config.kind == "reasoning" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The halting head starts near "never halt" (TRM: weight 0, bias -5).
        nn.init.zeros_(self.halt.weight)
        nn.init.constant_(self.halt.bias, -5.0)
        # The residual starts at exactly zero: the untrained model is its floor.
        nn.init.zeros_(self.score_out.weight)
        nn.init.zeros_(self.score_out.bias)
        if self.null is not None:
            nn.init.zeros_(self.null.weight)
            nn.init.zeros_(self.null.bias)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        with torch.no_grad():
            self.token_embedding.weight[0].zero_()

    def set_floor(self, floor: LinearFloor) -> None:
        """Install a fitted floor (its features must be this model's candidate features)."""
        F, M = self.config.num_candidate_features, self.config.num_modes
        if len(floor.feature_names) != F or floor.num_modes != M:
            raise ValueError(f"the floor has {len(floor.feature_names)} features and {floor.num_modes} modes; the "
                             f"model expects {F} and {M}")
        device = self.floor_mean.device
        self.floor_mean.copy_(torch.as_tensor(floor.mean, dtype=torch.float32, device=device))
        self.floor_std.copy_(torch.as_tensor(floor.std, dtype=torch.float32, device=device))
        self.floor_weight.copy_(torch.as_tensor(floor.weight, dtype=torch.float32, device=device))
        self.floor_bias.copy_(torch.as_tensor(floor.bias, dtype=torch.float32, device=device))
        self.floor = floor

    def floor_scores(self, cand_feats: Tensor, mode: Tensor | None = None) -> Tensor:
        """The floor's score of each candidate (B, K) from its features (B, K, F); ``mode`` (B,) picks the
        weights (None: mode 0)."""
        z = (cand_feats.float() - self.floor_mean) / self.floor_std
        if mode is None:
            return z @ self.floor_weight[0] + self.floor_bias[0]
        w, b = self.floor_weight[mode], self.floor_bias[mode]  # (B, F), (B,)
        return torch.einsum("bkf,bf->bk", z, w) + b[:, None]

    # --- recursion -------------------------------------------------------------------------------
    def initial_state(self, batch_size: int) -> tuple[Tensor, Tensor]:
        y = self.init_y.unsqueeze(0).expand(batch_size, -1, -1)
        z = self.init_z.unsqueeze(0).expand(batch_size, -1, -1)
        return y, z

    def read(self, query_ids: Tensor, query_feats: Tensor | None = None) -> Tensor:
        return self.reader(self.token_embedding(query_ids), query_ids, query_feats)  # (B, S, D)

    def improve(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """One improvement step: n latent updates, then one answer update."""
        for _ in range(self.config.num_latent_updates):
            z = self.net(z + y + x)
        y = self.net(y + z)
        return y, z

    def recurse(self, x: Tensor, y: Tensor, z: Tensor, num_improvement_steps: int | None = None
                ) -> tuple[Tensor, Tensor]:
        """One supervision step: T improvement steps, only the last one with gradient."""
        T = num_improvement_steps or self.config.num_improvement_steps
        if T > 1:
            with torch.no_grad():
                for _ in range(T - 1):
                    y, z = self.improve(x, y, z)
        return self.improve(x, y, z)

    # --- reading the answer state --------------------------------------------------------------------
    def encode_candidates(self, cand_ids: Tensor) -> Tensor:
        return self.candidates(self.token_embedding(cand_ids), cand_ids)  # (..., D)

    def query_vector(self, y: Tensor) -> Tensor:
        return F.normalize(self.query_proj(rms_norm(y.mean(1))), dim=-1)  # (B, D)

    def halt_logit(self, y: Tensor) -> Tensor:
        return self.halt(y.mean(1)).squeeze(-1)

    def score(self, y: Tensor, cand_vecs: Tensor | None, cand_feats: Tensor, cand_mask: Tensor,
              text_keep: Tensor | None = None, mode: Tensor | None = None) -> StepOutput:
        """Score K candidates (B, K, D) with features (B, K, F) against the answer state y: floor + residual.
        ``text_keep`` (B,), in training only, turns the text-match terms off for the rows where it is 0;
        ``mode`` (B,) picks the floor's weights. Without the residual, only the features are read."""
        scores = self.floor_scores(cand_feats, mode)
        if not self.use_residual:
            scores = scores.masked_fill(~cand_mask, float("-inf"))
            zeros = scores.new_zeros(len(scores))
            return StepOutput(y=y, z=y, scores=scores, null_score=zeros, halt_logit=zeros, query_vec=None)
        pooled = rms_norm(y.mean(1))  # (B, D)
        q = self.query_vector(y)
        c = F.normalize(cand_vecs, dim=-1)
        dense = self.dense_scale * torch.einsum("bd,bkd->bk", q, c)  # (B, K)
        inter = self.inter_in(q[:, None, :] * c)
        if text_keep is not None:
            dense = dense * text_keep[:, None].to(dense.dtype)
            inter = inter * text_keep[:, None, None].to(inter.dtype)
        hidden = F.silu(self.feat_in(cand_feats) + inter + self.state_in(pooled)[:, None, :])  # (B, K, H)
        scores = scores + self.score_out(hidden).squeeze(-1).float() + dense.float()
        scores = scores.masked_fill(~cand_mask, float("-inf"))
        null_score = self.null(pooled).squeeze(-1) if self.null is not None else scores.new_zeros(len(y))
        return StepOutput(
            y=y, z=y, scores=scores, null_score=null_score, halt_logit=self.halt_logit(y), query_vec=q,
            cand_vecs=cand_vecs,
            fail_logit=self.fail(hidden).squeeze(-1) if self.fail is not None else None,
            position=torch.sigmoid(self.position(hidden).squeeze(-1)) if self.position is not None else None,
            complexity_logits=self.complexity(pooled) if self.complexity is not None else None,
        )

    def forward(self, batch: dict[str, Tensor], state: tuple[Tensor, Tensor] | None = None,
                num_improvement_steps: int | None = None) -> StepOutput:
        """Run one supervision step from ``state`` (or the initial state) and score the candidates.

        ``batch`` holds ``query_ids`` (B, L), ``query_feats`` (B, G), ``cand_feats`` (B, K, F),
        ``cand_mask`` (B, K) and either ``cand_ids`` (B, K, C) or precomputed ``cand_vecs`` (B, K, D).
        """
        x = self.read(batch["query_ids"], batch.get("query_feats"))
        y, z = state if state is not None else self.initial_state(x.shape[0])
        y, z = self.recurse(x, y, z, num_improvement_steps)
        cand_vecs = batch["cand_vecs"] if "cand_vecs" in batch else self.encode_candidates(batch["cand_ids"])
        out = self.score(y, cand_vecs, batch["cand_feats"], batch["cand_mask"], batch.get("text_keep"),
                         batch.get("mode"))
        out.z = z
        return out
