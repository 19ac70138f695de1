"""``MemoryTRM``: stateful retrieval of the user's real stored facts.

A call gathers candidate facts and their features with ``MemoryInputs`` (the same code that made the
training tensors) from the query and the conversation's state: the facts its previous answer was about
(which is how a follow-up such as "tell me more" reaches them) and its previous query. The model scores
them, its linear floor plus, where the build kept it, the recursive residual read from the latent state
the conversation's carry starts from, and the best stored facts come back with where each came from.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from dexter_brain.bank import FACT_FIELDS, BankError, MemoryBank
from dexter_brain.checkpoint import WEIGHTS, CheckpointError, save_checkpoint
from dexter_brain.config import InferConfig
from dexter_brain.features.common import fact_text
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.inputs.memory import MAX_CANDIDATES, MemoryInputs, MemoryState
from dexter_brain.wrappers.carry import CarryStore
from dexter_brain.wrappers.common import (
    CALIBRATION_FILE, FeedbackSink, TRMCore, check_conversations, featurizer_from_state, padded, softmax,
    split_by_conversation, validate_conversation_id, validate_ids, validate_text,
)

BANK_FILE = "bank.sqlite"
MAX_K = MAX_CANDIDATES
"""At most this many memories per call: every candidate."""


class MemoryTRM:
    """Retrieve stored memories with a per-conversation latent carry.

    Example:
        >>> memory = MemoryTRM.from_checkpoint("models/memory")
        >>> r = memory.retrieve("What website projects do I have?", k=5, conversation_id="c1")
        >>> r["memories"][0]["text"], r["memories"][0]["source"]
    """

    def __init__(self, core: TRMCore, bank: str | Path | None = None, feedback_dir: str | Path | None = None):
        self.core = core
        self.bank_path = Path(bank) if bank is not None else core.directory.parent / BANK_FILE
        self.bank = self._open_bank()
        self.featurizer = featurizer_from_state(MemoryFeaturizer, core, bank=self.bank)
        self.inputs = MemoryInputs(self.featurizer)
        self._set_vectors(self._bank_vectors())
        self.feedback_sink = FeedbackSink(feedback_dir, core.directory, facts=self.bank)

    # --- the durable bank -----------------------------------------------------------------------------------
    def _encoder_tag(self) -> str:
        """What the bank's vectors were made by: this checkpoint's weights (their sha256, checked at load)."""
        return "weights:" + self.core.meta["files"][WEIGHTS]

    def _open_bank(self) -> MemoryBank:
        """The bank file, made from the checkpoint's facts the first time (vectors encoded once, when the
        model reads them); a bank made by other weights gets its vectors encoded again, once."""
        if self.bank_path.exists():
            try:
                return MemoryBank.open(self.bank_path)
            except BankError as exc:
                raise CheckpointError(str(exc)) from exc
        try:
            facts = [{k: f.get(k) for k in FACT_FIELDS} for f in self.core.featurizer_state["facts"]]
            texts = [f["text"] for f in facts]
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{self.core.directory / 'featurizer.json'}: not the state of a memory "
                                  f"featurizer ({type(exc).__name__}: {exc}): rebuild it (python build_trm_brain.py)"
                                  ) from exc
        vectors = self._encode(texts).cpu().numpy() if self.core.model.use_residual else None
        return MemoryBank.create(self.bank_path, facts, vectors,
                                 encoder=self._encoder_tag() if vectors is not None else None)

    def _bank_vectors(self) -> torch.Tensor:
        """The bank's vectors for every position; none (width 0) when the floor scores alone: nothing reads them,
        and a bank of 100,000 facts would otherwise hold 200 MB of zeros."""
        D = self.core.model.config.hidden_size
        if not self.core.model.use_residual:
            return torch.zeros(self.bank.num_positions, 0, device=self.core.device)
        tag = self._encoder_tag()
        if self.bank.dim != D or self.bank.encoder != tag:
            texts = [r.fact["text"] for r in self.bank.rows()]
            self.bank.write_vectors(self._encode(texts).cpu().numpy(), encoder=tag)
        return torch.tensor(np.array(self.bank.vectors(), dtype=np.float32), device=self.core.device)

    def _set_vectors(self, vectors: torch.Tensor) -> None:
        # A buffer with spare rows, so add_memory appends in place instead of copying the whole bank.
        self._buffer = torch.zeros(max(16, 2 * len(vectors)), vectors.shape[1], device=vectors.device)
        self._buffer[: len(vectors)] = vectors
        self._size = len(vectors)

    @property
    def bank_vectors(self) -> torch.Tensor:
        return self._buffer[: self._size]

    def _append_vector(self, vector: torch.Tensor) -> None:
        if self._size == len(self._buffer):
            grown = torch.zeros(2 * len(self._buffer), self._buffer.shape[1], device=self._buffer.device)
            grown[: self._size] = self._buffer
            self._buffer = grown
        self._buffer[self._size] = vector
        self._size += 1

    @classmethod
    def from_checkpoint(cls, path: str | Path, use_carry: bool = True, device: str = "auto", *,
                        infer_config: InferConfig | None = None, carry_store: CarryStore | None = None,
                        bank: str | Path | None = None, backend: str = "torch",
                        feedback_dir: str | Path | None = None) -> "MemoryTRM":
        """Load a memory checkpoint (a ``best/`` directory or the training directory holding it) and its bank.

        Args:
            bank: The ``MemoryBank`` file holding the stored facts; default ``bank.sqlite`` beside the
                checkpoint directory (``models/memory/bank.sqlite`` for ``models/memory/best``), made from the
                checkpoint's facts when it does not exist yet. ``add_memory``, ``remove_memory`` and
                ``refresh_from`` change it durably: a restart sees them.
            backend: ``"torch"``; ``"onnx"`` (or ``"onnx-int8"``) runs the model's ONNX export with onnxruntime
                on CPU (``dexter-brain export --format onnx`` makes it; ``pip install 'dexter-brain[onnx]'``).
            feedback_dir: Where ``feedback`` appends (a ``FeedbackLog`` directory, created on the first
                feedback); default ``<models_dir>/feedback`` (``models/feedback`` for ``models/memory/best``).
                Never the app's raw directory.

        Raises:
            CheckpointError: Missing or corrupt files, another TRM kind, a mismatched vocabulary, or a bank file
                that is not a memory bank; with an ONNX backend, a missing or stale export
                (``dexter_brain.export.ExportError``).
        """
        return cls(TRMCore(path, "memory", use_carry=use_carry, device=device, infer_config=infer_config,
                           carry_store=carry_store, backend=backend), bank=bank,
                   feedback_dir=feedback_dir)

    # --- the bank ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        """The candidate encodings the residual reads; (N, 0) when the floor scores alone (it reads none)."""
        width = self.core.model.config.hidden_size if self.core.model.use_residual else 0
        if not texts or not width:
            return torch.zeros(len(texts), width, device=self.core.device)
        chunks = []
        for start in range(0, len(texts), 1024):
            ids = self.core.encoder.candidates([fact_text(t) for t in texts[start:start + 1024]])
            chunks.append(self.core.encode_candidates(ids))
        return torch.cat(chunks)  # (N, D)

    def __len__(self) -> int:
        return len(self.featurizer.position)

    def add_memory(self, text: str, id: str | None = None, **meta) -> str:
        """Store a fact; it is retrievable by the next call, without retraining.

        Args:
            text: The fact.
            id: Its id; derived from the text when omitted.
            **meta: Optional ``entity``, ``topic``, ``source``, ``created_at``.

        Returns:
            The fact's id. Adding a fact already stored under that id with the same text changes nothing.

        Raises:
            ValueError: Another fact is stored under ``id``.
        """
        text = validate_text(text, "text")
        with self.core.lock:
            if id is None:
                id = "mem-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
            elif not isinstance(id, str) or not id:
                raise TypeError(f"id must be a non-empty string, got {id!r}")
            if id in self.featurizer.position:
                if self.featurizer.facts[self.featurizer.position[id]]["text"] == text:
                    return id  # the same fact again (e.g. a retry after a crash): already stored
                raise ValueError(f"a memory with id {id!r} already exists (remove_memory it first)")
            fact = {"id": id, "text": text, "source": str(meta.get("source", "add_memory")),
                    "entity": meta.get("entity") or self.featurizer.entities.main_entity(text),
                    "topic": meta.get("topic"),
                    "created_at": meta.get("created_at") or datetime.now(timezone.utc).isoformat(),
                    "neighbours": []}
            vector = self._encode([text])[0]
            if self.bank.dim is None:
                stored = None
            elif len(vector):
                stored = vector.cpu().numpy()
            else:  # the bank keeps a residual's vectors but this model scores with its floor alone: zeros
                stored = np.zeros(self.bank.dim, np.float32)
            self.bank.add(fact, stored)  # durable first
            self.featurizer.add_fact(fact)
            self._append_vector(vector)
        return id

    def remove_memory(self, id: str) -> None:
        """Forget a fact at once. Raises KeyError for an unknown id."""
        with self.core.lock:
            if id not in self.featurizer.position:
                raise KeyError(f"no memory with id {id!r}")
            self.bank.remove(id)
            self.featurizer.remove_fact(id)

    def refresh_from(self, raw: str | Path) -> dict:
        """Refill the bank from a raw directory (or a ``brain.db`` file), atomically and durably: facts no longer
        stored disappear, new ones become retrievable. Past-query statistics are kept. Returns counts."""
        from dexter_brain.corpora.memory import build_bank, build_entity_index
        from dexter_brain.raw import RawStore

        raw = Path(raw)
        with tempfile.TemporaryDirectory() as tmp:
            if raw.is_file():
                link = Path(tmp) / "brain.db"
                link.symlink_to(raw.resolve())
                raw = Path(tmp)
            store = RawStore.load(raw, show_progress_bar=False)
        entities = build_entity_index(store)
        facts = [f.model_dump(mode="json") for f in build_bank(store, entities)]
        with self.core.lock:
            before = set(self.featurizer.position)
            state = {**self.featurizer.to_state(), "entities": entities.to_json()}
            vectors = self._encode([f["text"] for f in facts]).cpu().numpy() if self.core.model.use_residual \
                else None
            self.bank.replace_all(facts, vectors, encoder=self._encoder_tag() if vectors is not None else None)
            self.featurizer = MemoryFeaturizer.from_state(state, bank=self.bank)
            self.inputs = MemoryInputs(self.featurizer)
            self._set_vectors(self._bank_vectors())
            after = set(self.featurizer.position)
        return {"facts": len(after), "added": len(after - before), "removed": len(before - after)}

    # --- retrieval --------------------------------------------------------------------------------------
    def retrieve(self, query: str, k: int = 5, conversation_id: str = "default", context: str | None = None
                 ) -> dict:
        """The stored facts most relevant to ``query`` in this conversation.

        Args:
            query: What the user asked.
            k: How many memories to return (1-100).
            conversation_id: Whose carry to start from and update.
            context: Extra text for the lexical search (e.g. the app's current screen).

        Returns:
            ``memories``: ``[{"id", "text", "score", "source"}]`` best first (score: probability share);
            ``confidence``: probability that the first memory is relevant (calibrated);
            ``abstain``: True when nothing stored looks relevant;
            ``steps``: recursion (supervision) steps used.

        Raises:
            TypeError / ValueError: The query is not a string, is empty or too long; ``k`` out of range.
        """
        return self.retrieve_many([query], k=k, conversation_ids=[conversation_id],
                                  contexts=[context])[0]

    def retrieve_many(self, queries: list[str], k: int = 5, conversation_ids: list[str] | str = "default",
                      contexts: list[str | None] | None = None) -> list[dict]:
        """``retrieve`` for a batch (one model call per wave of distinct conversations)."""
        if not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer between 1 and {MAX_K}, got {k!r}")
        if not isinstance(queries, (list, tuple)):
            raise TypeError(f"queries must be a list of strings, got {type(queries).__name__}")
        texts = [validate_text(q, "query") for q in queries]
        ids = check_conversations(conversation_ids, len(texts))
        contexts = list(contexts) if contexts is not None else [None] * len(texts)
        contexts = [validate_text(c, "context", allow_empty=True) if c is not None else None for c in contexts]
        results: list[dict | None] = [None] * len(texts)
        for wave in split_by_conversation(ids):
            with self.core.conversations.hold([ids[i] for i in wave]):
                for i, r in zip(wave, self._call([texts[i] for i in wave], [ids[i] for i in wave],
                                                 [contexts[i] for i in wave], k)):
                    results[i] = r
        return results

    def inputs_for(self, query: str, conversation_id: str = "default", context: str | None = None) -> dict:
        """What a ``retrieve`` of ``query`` in this conversation would score now, as numpy arrays of one row:
        ``query_ids``, ``query_feats``, ``cand_index`` (bank positions), ``cand_feats``, and ``candidates``
        (the fact ids). Changes nothing; for inspection (the same arrays the training tensors hold)."""
        query = validate_text(query, "query")
        with self.core.lock:
            rows, arrays = self._inputs([query], [self._state(conversation_id)], [context])
        return {**{k: v for k, v in arrays.items() if k != "cand_mask"},
                "candidates": [self.featurizer.facts[i]["id"] for i in rows[0].candidates]}

    def _inputs(self, queries, states, contexts) -> tuple[list, dict[str, np.ndarray]]:
        rows = self.inputs.rows(queries, states, contexts)
        feats, index, mask = padded([r.feats for r in rows], [r.candidates for r in rows],
                                    self.core.model.config.num_candidate_features)
        return rows, {"query_ids": MemoryInputs.query_ids(self.core.encoder, queries),
                      "query_feats": np.stack([r.query_feats for r in rows]), "cand_index": index,
                      "cand_feats": feats, "cand_mask": mask}

    @torch.inference_mode()
    def _call(self, queries: list[str], conversation_ids: list[str], contexts: list[str | None], k: int) -> list[dict]:
        core = self.core
        states = [self._state(cid) for cid in conversation_ids]
        with core.lock:
            rows, arrays = self._inputs(queries, states, contexts)
            facts = [[self.featurizer.facts[i] for i in r.candidates] for r in rows]
            vectors = self.bank_vectors
        batch = {"query_ids": core.tensor(arrays["query_ids"], torch.long),
                 "query_feats": core.tensor(arrays["query_feats"]),
                 "cand_vecs": vectors[core.tensor(arrays["cand_index"].clip(min=0))],
                 "cand_feats": core.tensor(arrays["cand_feats"]), "cand_mask": core.tensor(arrays["cand_mask"])}
        result = core.call(batch, conversation_ids)
        out = result.out
        results, extras = [], []
        for b, query in enumerate(queries):
            n = len(rows[b].candidates)
            scores = out.scores[b, :n].float().cpu().numpy()
            probs = softmax(np.append(scores, float(out.null_score[b])), core.calibration.temperature)
            order = np.argsort(-scores, kind="stable")
            memories = [{"id": facts[b][i]["id"], "text": facts[b][i]["text"], "score": float(probs[i]),
                         "source": facts[b][i]["source"]} for i in order[:k]]
            confidence = float(probs[order[0]]) if n else 0.0
            # "Nothing relevant" wins when its probability is above that of all the candidates together.
            abstain = n == 0 or probs[-1] >= 1.0 - probs[-1] or confidence < core.calibration.abstain_below
            results.append({"memories": memories, "confidence": confidence, "abstain": bool(abstain),
                            "steps": int(result.steps[b])})
            state = MemoryInputs.next_state(query, [facts[b][i]["id"] for i in order])
            extras.append({"focus": list(state.focus), "last_query": state.last_query})
        core.keep_carry(conversation_ids, result, extras)
        return results

    def _state(self, conversation_id: str) -> MemoryState:
        """What the conversation's carry gives this turn's inputs (nothing without carry)."""
        if not self.core.use_carry:
            return MemoryState()
        carry = self.core.carries.get(conversation_id)
        if carry is None:
            return MemoryState()
        return MemoryState(focus=tuple(carry.extra.get("focus", ())), last_query=carry.extra.get("last_query"))

    # --- feedback ---------------------------------------------------------------------------------------------
    def feedback(self, conversation_id: str, used: list[str] | None = None, rejected: list[str] | None = None, *,
                 query: str | None = None) -> dict:
        """Record which stored facts answered the conversation's last ``retrieve``, for ``dexter-brain learn``.

        Appends a user turn with ``memory_refs = used`` (and copies of the facts named) to the feedback
        directory (``feedback_dir`` of ``from_checkpoint``), in the raw-data format the corpus miners read.

        Args:
            conversation_id: The conversation whose last ``retrieve`` the feedback is about (its carry holds
                that query).
            used: Ids of the facts the user relied on; ``[]`` when none helped ("nothing stored was relevant").
            rejected: Ids of facts shown but turned down.
            query: The query the feedback is about, when it is not the conversation's last ``retrieve`` (or the
                wrapper runs without carry).

        Returns:
            ``conversation_id``, ``query``, ``used``, ``rejected``: what was recorded.

        Raises:
            ValueError / TypeError: Neither ``used`` nor ``rejected`` given; ids that are not strings, not stored
                in the bank, or both used and rejected; a conversation with no ``retrieve`` to refer to (and no
                ``query``); a feedback directory that may not be written (the app's raw directory).

        Example:
            >>> r = memory.retrieve("When does my passport expire?", conversation_id="c1")  # doctest: +SKIP
            >>> memory.feedback("c1", used=[r["memories"][0]["id"]])  # doctest: +SKIP
        """
        conversation_id = validate_conversation_id(conversation_id)
        with self.core.conversations.hold([conversation_id]):  # the carry's last query, not a retrieve's half
            _, query, used, rejected = self.check_feedback(conversation_id, used, rejected, query)
            self.feedback_sink.log.memory(conversation_id, query, used, rejected)
        return {"conversation_id": conversation_id, "query": query, "used": used, "rejected": rejected}

    def check_feedback(self, conversation_id: str, used, rejected, query: str | None = None
                       ) -> tuple[str, str, list[str], list[str]]:
        """The arguments of ``feedback`` checked and completed: (conversation_id, query, used, rejected).
        Writes nothing; raises what ``feedback`` raises."""
        conversation_id = validate_conversation_id(conversation_id)
        if used is None and rejected is None:
            raise ValueError("give used=[fact ids] (the facts that helped; [] when none did) and/or rejected=[fact "
                             "ids] (the facts turned down)")
        used = validate_ids(used if used is not None else [], "used")
        rejected = validate_ids(rejected if rejected is not None else [], "rejected")
        both = sorted(set(used) & set(rejected))
        if both:
            raise ValueError(f"memory id(s) {', '.join(map(repr, both))} are both used and rejected")
        unknown = [i for i in used + rejected if i not in self.featurizer.position]
        if unknown:
            raise ValueError(f"unknown memory id(s) {', '.join(map(repr, unknown))}: feedback names facts stored in "
                             f"the bank ({len(self)} facts)")
        if query is None:
            carry = self.core.carries.get(conversation_id) if self.core.use_carry else None
            query = carry.extra.get("last_query") if carry is not None else None
            if not query:
                raise ValueError(f"conversation {conversation_id!r} has no retrieve to give feedback on (feedback "
                                 f"refers to its last retrieve{'' if self.core.use_carry else ', kept only with carry'}"
                                 f"): retrieve first, or pass query=")
        return conversation_id, validate_text(query, "query"), used, rejected

    # --- carry and persistence ----------------------------------------------------------------------------
    def reset_carry(self, conversation_id: str | None = None) -> None:
        """Forget one conversation's carry (or every conversation's with no id)."""
        self.core.carries.reset(conversation_id)

    def save_carry(self, path: str | Path) -> Path:
        return self.core.carries.save(path)

    def load_carry(self, path: str | Path) -> int:
        return self.core.carries.load(path)

    def save(self, directory: str | Path) -> Path:
        """Write a checkpoint with the current bank; ``from_checkpoint(directory)`` reads it back."""
        core = self.core
        with core.lock:
            state = self.featurizer.to_state()
        return save_checkpoint(directory, core.model, meta=core.meta, tokenizer=core.vocab.model_proto,
                               featurizer=state, extra_json={CALIBRATION_FILE: core.calibration.to_dict()})

    def describe(self) -> dict:
        return {**self.core.describe(), "facts": len(self)}
