"""A saved model is a folder: `config.json` (the ModelConfig) + `model.weights.h5`.

Loading rebuilds the architecture from the config with our own classes and loads the weights into
it; `keras.models.load_model` (which would deserialise code-bearing objects) is never used. The
tokenizers' JSON files live in the same run folder and are saved by their own module.
"""

from __future__ import annotations

import os
from pathlib import Path

from textgen.core.errors import ConfigError, StoreError
from textgen.core.fsutil import atomic_path, atomic_write_text
from textgen.models.base import Seq2SeqModel
from textgen.models.config import ModelConfig
from textgen.models.registry import build_model

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


def save_model(model: Seq2SeqModel, directory: str | os.PathLike) -> Path:
    """Write config.json and model.weights.h5 into `directory`, each atomically; return the folder.

    Weights are written before the config, so a folder with a config always has its weights.
    """
    directory = Path(directory)
    with atomic_path(directory / WEIGHTS_FILE, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
    atomic_write_text(directory / CONFIG_FILE, model.config.to_json())
    return directory


def load_config(directory: str | os.PathLike) -> ModelConfig:
    path = Path(directory) / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StoreError(f"{path.parent.name}/{CONFIG_FILE} is damaged: not UTF-8 text.") from None
    except FileNotFoundError:
        raise StoreError(f"no saved model in {directory}: {CONFIG_FILE} is missing.") from None
    try:
        return ModelConfig.from_json(text)
    except (ValueError, TypeError) as error:  # ConfigError, malformed JSON, or not an object
        if isinstance(error, ConfigError):
            raise StoreError(f"{path.parent.name}/{CONFIG_FILE} is not a model config we can build: {error}") from None
        raise StoreError(f"{path.parent.name}/{CONFIG_FILE} is damaged: not valid JSON ({error}).") from None


def load_model_dir(directory: str | os.PathLike) -> Seq2SeqModel:
    """Rebuild the model saved in `directory` by `save_model`, weights included."""
    config = load_config(directory)
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise StoreError(f"no weights in {directory}: {WEIGHTS_FILE} is missing.")
    model = build_model(config)
    try:
        model.load_weights(weights)
    except Exception as error:  # h5py/Keras: a truncated, garbage or mismatched weights file
        raise StoreError(f"the weights in {Path(directory).name} are damaged or do not fit the model "
                         f"({type(error).__name__}: {str(error)[:200]}).") from None
    return model
