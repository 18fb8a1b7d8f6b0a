"""Model families for TextGen Lab: configs, the registry, losses and persistence.

The config side (`ModelConfig`, presets, `parameter_count`, `flops_per_token`) imports no
TensorFlow; everything else is imported on first use, so `import textgen.models` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from textgen.models.config import (
    DECODER_ONLY_KINDS,
    FAMILY_FIELDS,
    MODEL_KINDS,
    PRESET_NAMES,
    PRESETS,
    ModelConfig,
    preset_config,
)
from textgen.models.size import flops_per_token, parameter_count

_LAZY = {
    "build_model": "textgen.models.registry",
    "MODEL_CLASSES": "textgen.models.registry",
    "Seq2SeqModel": "textgen.models.base",
    "save_model": "textgen.models.persistence",
    "load_model_dir": "textgen.models.persistence",
    "masked_cross_entropy": "textgen.models.losses",
    "MaskedCrossEntropy": "textgen.models.losses",
    "MaskedTokenAccuracy": "textgen.models.losses",
    "MaskedPerplexity": "textgen.models.losses",
}

__all__ = ["DECODER_ONLY_KINDS", "FAMILY_FIELDS", "MODEL_KINDS", "PRESET_NAMES", "PRESETS",
           "ModelConfig", "preset_config", "flops_per_token", "parameter_count", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textgen.models' has no attribute {name!r}")
