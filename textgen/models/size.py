"""Size of a model from its config alone, before anything is built (no TensorFlow import).

`parameter_count(config)` is exact: it counts the weights our classes create (tests compare it
with `model.count_params()` for every family). `flops_per_token(config)` is an estimate:

    FLOPs per target token = 2 x (multiply-adds of the forward pass per target token)

counting every matrix product (projections, recurrent gates, attention scores and weighted sums,
the output projection onto the vocabulary), and nothing else (embedding look-ups, activations,
softmax, layer norms). Seq2seq models add the encoder's multiply-adds per source token, assuming
sources as long as targets; attention over a context takes `sequence_length` tokens
(config.max_target_length by default), an upper bound (a causal prefix averages half of it).
Training costs about 3x the forward pass.
"""

from __future__ import annotations

from textgen.models.config import ModelConfig


def _gates(cell: str) -> int:
    return 3 if cell == "gru" else 4


def _rnn_layer_parameters(cell: str, input_dim: int, units: int) -> int:
    # Keras GRU (reset_after=True, cuDNN-compatible) keeps separate input and recurrent biases.
    biases = 2 * 3 * units if cell == "gru" else 4 * units
    return _gates(cell) * units * (input_dim + units) + biases


def _rnn_stack_parameters(cell: str, input_dim: int, units: int, num_layers: int,
                          directions: int = 1) -> int:
    return sum(directions * _rnn_layer_parameters(cell, input_dim if i == 0 else units, units)
               for i in range(num_layers))


def _output_parameters(config: ModelConfig, input_dim: int, embedding_dim: int) -> int:
    vocab = config.target_vocab_size
    if config.tie_embeddings:  # bias + (down projection when widths differ)
        return vocab + (input_dim * embedding_dim if input_dim != embedding_dim else 0)
    return input_dim * vocab + vocab


def _transformer_stack_parameters(config: ModelConfig, vocab_size: int, max_length: int,
                                  attention_blocks: int) -> int:
    """Embedding, positions and layers of one Transformer stack (encoder: 1 attention block per
    layer, decoder: 2, decoder-only: 1), final LayerNorm included."""
    d, f = config.model_dim, config.feed_forward_dim
    attention = 4 * (d * d + d)  # W_Q, W_K, W_V, W_O with biases
    feed_forward = d * f + f + f * d + d
    layer_norm = 2 * d
    layer = attention_blocks * (attention + layer_norm) + feed_forward + layer_norm
    positions = max_length * d if config.positional == "learned" else 0
    final_norm = layer_norm if config.norm_first else 0
    return vocab_size * d + positions + config.num_layers * layer + final_norm


def parameter_count(config: ModelConfig) -> int:
    """Exact number of weights (trainable and not) of the model `build_model(config)` makes."""
    c = config
    e, h = c.embedding_dim, c.hidden_units
    if c.kind in ("gru", "lstm", "bahdanau", "luong"):
        encoder = c.source_vocab_size * e + _rnn_stack_parameters(
            c.cell, e, h, c.num_layers, 2 if c.bidirectional else 1)
        target_embedding = c.target_vocab_size * e
        if c.kind in ("gru", "lstm"):
            decoder = _rnn_stack_parameters(c.cell, e, h, c.num_layers)
            return encoder + target_embedding + decoder + _output_parameters(c, h, e)
        if c.kind == "bahdanau":
            attention = (h * h + h) + h * h + h  # W (with b), U, v
            decoder = _rnn_stack_parameters(c.cell, e + h, h, c.num_layers)
            return encoder + target_embedding + attention + decoder + _output_parameters(c, 2 * h, e)
        attention = (h * h if c.luong_score == "general" else 0) + 2 * h * h  # W_a, W_c
        decoder = _rnn_stack_parameters(c.cell, e, h, c.num_layers)
        return encoder + target_embedding + attention + decoder + _output_parameters(c, h, e)
    if c.kind == "lstm-lm":
        return (c.target_vocab_size * e + _rnn_stack_parameters("lstm", e, h, c.num_layers)
                + _output_parameters(c, h, e))
    decoder = _transformer_stack_parameters(
        c, c.target_vocab_size, c.max_target_length, 2 if c.kind == "transformer" else 1)
    decoder += _output_parameters(c, c.model_dim, c.model_dim)
    if c.kind == "transformer-lm":
        return decoder
    return decoder + _transformer_stack_parameters(c, c.source_vocab_size, c.max_source_length, 1)


def _rnn_stack_macs(cell: str, input_dim: int, units: int, num_layers: int,
                    directions: int = 1) -> int:
    return sum(directions * _gates(cell) * units * ((input_dim if i == 0 else units) + units)
               for i in range(num_layers))


def _output_macs(config: ModelConfig, input_dim: int, embedding_dim: int) -> int:
    if config.tie_embeddings and input_dim != embedding_dim:
        return input_dim * embedding_dim + embedding_dim * config.target_vocab_size
    return input_dim * config.target_vocab_size


def flops_per_token(config: ModelConfig, sequence_length: int | None = None) -> int:
    """Estimated forward FLOPs per target token (2 x multiply-adds; see the module docstring)."""
    c = config
    n = sequence_length or c.max_target_length
    e, h, d, f = c.embedding_dim, c.hidden_units, c.model_dim, c.feed_forward_dim
    if c.kind in ("gru", "lstm", "bahdanau", "luong"):
        encoder = _rnn_stack_macs(c.cell, e, h, c.num_layers, 2 if c.bidirectional else 1)
        if c.kind in ("gru", "lstm"):
            decoder = _rnn_stack_macs(c.cell, e, h, c.num_layers) + _output_macs(c, h, e)
        elif c.kind == "bahdanau":
            encoder += h * h  # U h_j
            attention = h * h + n * h + n * h  # W s, vᵀ tanh(...) over n positions, Σ α h
            decoder = (attention + _rnn_stack_macs(c.cell, e + h, h, c.num_layers)
                       + _output_macs(c, 2 * h, e))
        else:
            encoder += h * h if c.luong_score == "general" else 0  # W_a h_j
            attention = n * h + n * h + 2 * h * h  # scores, Σ α h, W_c [c; s]
            decoder = (_rnn_stack_macs(c.cell, e, h, c.num_layers) + attention
                       + _output_macs(c, h, e))
        return 2 * (encoder + decoder)
    if c.kind == "lstm-lm":
        return 2 * (_rnn_stack_macs("lstm", e, h, c.num_layers) + _output_macs(c, h, e))
    self_attention = 4 * d * d + 2 * n * d  # projections, Q Kᵀ and α V over n positions
    feed_forward = 2 * d * f
    if c.kind == "transformer-lm":
        return 2 * (c.num_layers * (self_attention + feed_forward) + _output_macs(c, d, d))
    cross_attention = 4 * d * d + 2 * n * d  # W_Q, W_O per target token + W_K, W_V per source token
    encoder = c.num_layers * (self_attention + feed_forward)
    decoder = c.num_layers * (self_attention + cross_attention + feed_forward)
    return 2 * (encoder + decoder + _output_macs(c, d, d))
