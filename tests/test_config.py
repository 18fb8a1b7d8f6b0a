"""Every config field declares its default, range or choices and help once (`setting`); the
validation, `parse_setting`, the CLI's `--set` help and `settings` command read that declaration."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli

from textgen.core.config import ConfigMixin
from textgen.core.errors import ConfigError
from textgen.data.config import CorpusConfig, TokenizerConfig
from textgen.decoding.config import DecodingConfig
from textgen.models.config import ModelConfig
from textgen.training import planning
from textgen.training.config import TrainConfig

CONFIGS = (CorpusConfig, TokenizerConfig, ModelConfig, DecodingConfig, TrainConfig)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_declares_help_and_every_number_its_range(config: type[ConfigMixin]) -> None:
    for spec in config.field_specs():
        assert len(spec.help) > 10, f"{config.__name__}.{spec.name} has no help"
        if spec.type in (int, float):
            assert spec.low is not None and spec.high is not None, f"{config.__name__}.{spec.name} has no range"
        if spec.type is str and spec.default is not None and spec.name not in ("source_field", "target_field"):
            assert spec.choices and spec.default in spec.choices, f"{config.__name__}.{spec.name} has no choices"
        config().check_fields()  # the defaults are valid


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_a_value_outside_a_declared_range_or_choice_is_refused_by_name(config: type[ConfigMixin]) -> None:
    for spec in config.field_specs():
        if spec.high is not None and spec.name != "source_vocab_size":
            too_big = spec.high + (1 if spec.type is int else spec.high)
            with pytest.raises(ConfigError, match=f"^{spec.name} must be between"):
                config(**{spec.name: spec.type(too_big)})
        if spec.choices:
            with pytest.raises(ConfigError, match=f"^{spec.name} must be one of {', '.join(spec.choices)}; got 'x'"):
                config(**{spec.name: "x"})
        if spec.type is int and spec.name != "source_vocab_size":
            within = spec.low + 0.5  # inside the range, not a whole number
            with pytest.raises(ConfigError, match=f"^{spec.name} must be an integer, got {within}"):
                config(**{spec.name: within})
        if spec.type is bool:
            with pytest.raises(ConfigError, match=f"^{spec.name} must be true or false, got 'yes'"):
                config(**{spec.name: "yes"})


def test_checks_across_fields_stay_with_their_config() -> None:
    with pytest.raises(ConfigError, match="model_dim must be a multiple of num_heads"):
        ModelConfig(model_dim=10, num_heads=3)
    with pytest.raises(ConfigError, match="source_vocab_size must be between 4 and 2000000, got 0"):
        ModelConfig(kind="gru", source_vocab_size=0)
    assert ModelConfig(kind="lstm-lm", source_vocab_size=0).source_vocab_size == 0
    with pytest.raises(ConfigError, match="num_return must be at most beam_width"):
        DecodingConfig(beam_width=2, num_return=3)
    with pytest.raises(ConfigError, match="must leave at least 10% for training"):
        CorpusConfig(valid_fraction=0.5, test_fraction=0.45)


def test_a_setting_parses_from_text_to_its_type_within_its_range() -> None:
    assert planning.parse_setting("learning_rate", " 3e-4 ") == pytest.approx(3e-4)
    assert planning.parse_setting("tie_embeddings", "yes") is True
    assert planning.parse_setting("tokenizer", "char") == "char"
    assert planning.parse_setting("model.dropout", "0.2") == pytest.approx(0.2)
    assert planning.setting_spec("tokenizer") == TokenizerConfig.field_spec("kind")
    for key, text, message in [("epochs", "1e999", "epochs must be an integer, got '1e999'"),
                               ("batch_size", "0", "batch_size must be between 1 and 65536, got 0"),
                               ("minutes", "nan", "minutes must be a number, got NaN"),
                               ("learning_rate", "inf", "learning_rate must be between"),
                               ("optimizer", "sgd", "optimizer must be one of adam, adamw; got 'sgd'"),
                               ("nonsense", "1", "unknown setting 'nonsense'"),
                               ("train.dropout", "1", "'dropout' is not a TrainConfig field")]:
        with pytest.raises(ConfigError, match=message):
            planning.parse_setting(key, text)


def test_the_cli_help_and_settings_command_read_the_declarations() -> None:
    train_help = " ".join(run_cli("train", "--help").stdout.decode().split())
    for key in ("batch_size (1..65536)", "optimizer (adam|adamw)", "tokenizer (char|word|bpe|wordpiece)",
                "learning_rate (1e-08..10)", "num_layers (1..48)"):
        assert key in train_help
    assert "beam_stopping (current_length|max_length)" in " ".join(run_cli("generate", "--help").stdout.decode().split())
    listed = json.loads(run_cli("settings", "--json").stdout)
    train = {entry["name"]: entry for entry in listed["train --set (tokenizer, model, training)"]}
    assert train["batch_size"] == {"name": "batch_size", "default": 64, "allowed": "1..65536",
                                   "help": TrainConfig.field_spec("batch_size").help}
    assert train["tokenizer"]["allowed"] == "char|word|bpe|wordpiece"
    decoding = {entry["name"] for entry in listed["generate / evaluate / compare --set (decoding)"]}
    assert decoding == set(DecodingConfig.field_names())
    text = run_cli("settings").stdout.decode()
    assert "  learning_rate = 0.001  [1e-08..10]" in text
