"""Decoding for every model family, written against the step interface of models/base.py.

    DecodingConfig                       what to do (strategy, beam, sampling, caps)
    generate(model, src_tok, tgt_tok, texts, config) -> [Generation]     text in, plain data out
    decode_ids(model, source_ids, config) -> [RawResult]                  ids in
    teacher_forced_attention(model, src_tok, tgt_tok, source, reference) -> {key: array}
    attention_matrix(generation.attention, key, layer=-1, head=None) -> 2-D map for display
    search(step_fn, state, start_ids, config) -> [RawResult]              any step function
    greedy_search / beam_search / sample_search                           the strategies (tensors)

`DecodingConfig` imports no TensorFlow (forms and the CLI validate it cheaply); everything else is
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from textgen.decoding.config import BEAM_STOPPING, STRATEGIES, DecodingConfig

_LAZY = {
    "Generation": "textgen.decoding.decoder",
    "attention_matrix": "textgen.decoding.decoder",
    "decode_ids": "textgen.decoding.decoder",
    "generate": "textgen.decoding.decoder",
    "search": "textgen.decoding.decoder",
    "teacher_forced_attention": "textgen.decoding.decoder",
    "Hypothesis": "textgen.decoding.common",
    "RawResult": "textgen.decoding.common",
    "length_penalty": "textgen.decoding.common",
    "beam_search": "textgen.decoding.beam",
    "greedy_search": "textgen.decoding.greedy",
    "sample_search": "textgen.decoding.sampling",
    "filter_logits": "textgen.decoding.sampling",
}

__all__ = ["BEAM_STOPPING", "DecodingConfig", "STRATEGIES", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'textgen.decoding' has no attribute {name!r}")
