"""Tests for dexter_brain.config: unknown keys are errors, every field is documented, JSON save -> load round
trips, checks across fields name the fields, derived values stay out of saved files, and the three configs are
separate (InferConfig is never needed to rebuild a model).

Run: python -m pytest tests/test_config.py -q   (well under a second)
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from dexter_brain.config import CONFIG_VERSION, CurriculumStage, InferConfig, ModelConfig, TrainConfig


def tiny() -> ModelConfig:
    return ModelConfig.tiny("memory")


def train_config(tmp_path, **fields) -> TrainConfig:
    # The default curriculum goes to 4 supervision steps; the tiny model allows 3.
    fields.setdefault("curriculum", [{"until": 1.0, "max_difficulty": 2, "max_supervision_steps": 3}])
    return TrainConfig(model=tiny(), data_dir=tmp_path / "data", out_dir=tmp_path / "out", **fields)


ALL_CONFIGS = (ModelConfig, CurriculumStage, TrainConfig, InferConfig)


# --- unknown keys, frozen, documented -----------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda tmp: ModelConfig(**tiny().model_dump(), hiden_size=8),
    lambda tmp: CurriculumStage(until=1.0, max_difficulty=0, max_supervision_steps=1, hiden_size=8),
    lambda tmp: train_config(tmp, hiden_size=8),
    lambda tmp: TrainConfig(model={**tiny().model_dump(), "hiden_size": 8}, data_dir=tmp, out_dir=tmp,
                            curriculum=[]),
    lambda tmp: InferConfig(hiden_size=8),
], ids=["model", "curriculum", "train", "train.model", "infer"])
def test_unknown_key_is_an_error(tmp_path, build):
    with pytest.raises(ValidationError) as err:
        build(tmp_path)
    (error,) = err.value.errors()
    assert error["type"] == "extra_forbidden"
    assert error["loc"][-1] == "hiden_size"


def test_unknown_key_in_a_config_file_is_an_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(tiny().to_json()), "num_layer": 3}), encoding="utf-8")
    with pytest.raises(ValidationError, match="num_layer\n  Extra inputs are not permitted"):
        ModelConfig.from_file(path)


def test_configs_are_frozen():
    with pytest.raises(ValidationError, match="frozen"):
        tiny().hidden_size = 64
    with pytest.raises(ValidationError, match="frozen"):
        InferConfig().halt_threshold = 0.9


@pytest.mark.parametrize("cls", ALL_CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_a_docstring(cls: type[BaseModel]):
    undocumented = [name for name, f in cls.model_fields.items() if not (f.description or "").strip()]
    assert undocumented == []


# --- save -> load ------------------------------------------------------------------------------------
def test_model_config_round_trips_through_json(tmp_path):
    config = ModelConfig.tiny("reasoning", vocab_size=333, num_candidate_features=7, num_query_features=0)
    (tmp_path / "config.json").write_text(config.to_json(), encoding="utf-8")
    assert ModelConfig.from_file(tmp_path / "config.json") == config
    assert ModelConfig.from_checkpoint(tmp_path) == config


def test_train_config_round_trips_through_json(tmp_path):
    config = train_config(tmp_path, max_steps=20, warmup_steps=3, betas=(0.8, 0.9), thinking_cost=0.5,
                          curriculum=[{"until": 0.5, "max_difficulty": 0, "max_supervision_steps": 1},
                                      {"until": 1.0, "max_difficulty": 2, "max_supervision_steps": 3}])
    (tmp_path / "train.json").write_text(config.to_json(), encoding="utf-8")
    loaded = TrainConfig.from_file(tmp_path / "train.json")
    assert loaded == config
    assert loaded.model == config.model and loaded.curriculum[0].max_supervision_steps == 1


def test_infer_config_round_trips_through_json(tmp_path):
    config = InferConfig(device="cuda", halt_threshold=0.7, max_supervision_steps=2, batch_size=8)
    (tmp_path / "infer.json").write_text(config.to_json(), encoding="utf-8")
    assert InferConfig.from_file(tmp_path / "infer.json") == config


# --- checks across fields ----------------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    (dict(max_steps=10, warmup_steps=10), "warmup_steps (10) must be below max_steps (10)"),
    (dict(curriculum=[{"until": 1.0, "max_difficulty": 2, "max_supervision_steps": 5}]),
     "curriculum max_supervision_steps [5] exceed model.max_supervision_steps (3)"),
    (dict(curriculum=[{"until": 0.5, "max_difficulty": 0, "max_supervision_steps": 1}]),
     "curriculum stages must have increasing `until` ending at 1.0"),
    (dict(curriculum=[{"until": 1.0, "max_difficulty": 0, "max_supervision_steps": 1},
                      {"until": 0.5, "max_difficulty": 2, "max_supervision_steps": 1}]),
     "curriculum stages must have increasing `until` ending at 1.0"),
])
def test_train_config_cross_field_errors_name_the_fields(tmp_path, fields, message):
    with pytest.raises(ValidationError) as err:
        train_config(tmp_path, **fields)
    assert message in str(err.value)


@pytest.mark.parametrize("fields, message", [
    (dict(mixer="attention", hidden_size=30, num_heads=4), "hidden_size (30) must be divisible by num_heads (4)"),
    (dict(version=CONFIG_VERSION + 1), f"config version {CONFIG_VERSION + 1} is not supported"),
    (dict(vocab_size=0), "vocab_size\n  Input should be greater than 0"),
])
def test_model_config_errors(fields, message):
    with pytest.raises(ValidationError) as err:
        ModelConfig(**{**tiny().model_dump(), **fields})
    assert message in str(err.value)


def test_mlp_mixer_does_not_need_divisible_heads():
    assert ModelConfig(**{**tiny().model_dump(), "mixer": "mlp", "hidden_size": 30, "num_heads": 4}).hidden_size == 30


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5])
def test_halt_threshold_is_a_probability_strictly_inside_0_1(threshold):
    with pytest.raises(ValidationError, match="halt_threshold"):
        InferConfig(halt_threshold=threshold)


# --- derived values and separation -------------------------------------------------------------------
@pytest.mark.parametrize("T, n, calls", [(3, 4, 15), (2, 3, 8), (1, 1, 2)])
def test_calls_per_supervision_step_is_T_times_n_plus_1(T, n, calls):
    config = ModelConfig(**{**tiny().model_dump(), "num_improvement_steps": T, "num_latent_updates": n})
    assert config.calls_per_supervision_step == calls


def test_derived_values_are_not_saved():
    saved = json.loads(tiny().to_json())
    assert "calls_per_supervision_step" not in saved and "swiglu_hidden" not in saved
    assert tiny().swiglu_hidden % 8 == 0


@pytest.mark.parametrize("kind", ["memory", "tool", "reasoning"])
def test_default_config_of_each_kind_is_valid_and_round_trips(kind):
    config = ModelConfig.default(kind, vocab_size=100, num_candidate_features=3, num_query_features=2)
    assert config.kind == kind and config.num_candidate_features == 3
    assert ModelConfig.model_validate_json(config.to_json()) == config


def test_train_and_infer_configs_are_separate():
    assert not issubclass(InferConfig, TrainConfig) and not issubclass(TrainConfig, InferConfig)
    train_fields, infer_fields = set(TrainConfig.model_fields), set(InferConfig.model_fields)
    # Inference settings never rebuild a model: the only name shared with ModelConfig is the step limit,
    # an optional override of the model's own.
    assert infer_fields & set(ModelConfig.model_fields) == {"max_supervision_steps"}
    assert "model" in train_fields and "model" not in infer_fields
    assert {"lr", "thinking_cost", "max_steps", "seed"} <= train_fields
    assert not {"lr", "thinking_cost", "max_steps", "seed"} & infer_fields
    assert InferConfig().max_supervision_steps is None  # None means the model's own limit
