"""`DecodingConfig`: how outputs are generated. Saved with every evaluation; `--set key=value`
overrides any field."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, setting
from textgen.core.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")
# When a beam search row stops once its n-best pool is full: when no live hypothesis can beat
# the pool's worst if it ended at its current length, or at any length up to the cap.
BEAM_STOPPING = ("current_length", "max_length")


@dataclasses.dataclass(frozen=True)
class DecodingConfig(ConfigMixin):
    """One decoding setup. Fields a strategy does not read are ignored by it."""

    strategy: str = setting(
        "greedy", choices=STRATEGIES,
        help=("greedy (most likely next token each step), beam (beam search), or sample (random "
              "sampling with temperature, top-k and top-p)."))
    beam_width: int = setting(
        4, low=1, high=64,
        help="beam: hypotheses kept per input. 4-5 is the usual sweet spot for translation.")
    length_penalty: float = setting(
        0.6, low=0.0, high=5.0,
        help=("beam: alpha of the GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016); "
              "scores are sum(log p) / penalty. 0 ranks by raw log-probability (favours short "
              "outputs); 0.6 is the GNMT / Marian value; 1.0 is close to per-token averaging."))
    num_return: int = setting(
        0, low=0, high=64,
        help="beam: size of the n-best list returned (0 = beam_width; at most beam_width).")
    beam_stopping: str = setting(
        "current_length", choices=BEAM_STOPPING,
        help=("beam: when a row stops once its n-best pool is full. \"current_length\" (Hugging Face's "
              "default rule): when its best live hypothesis, scored as if it ended now, cannot beat "
              "the pool's worst. \"max_length\": only when none could at any length up to the cap (with "
              "future tokens free), so no later hypothesis can still win; slower."))
    temperature: float = setting(
        1.0, low=1e-6, high=100.0,
        help=("sample: logits are divided by it. Below 1 sharpens (near 0 is greedy), above 1 "
              "flattens."))
    top_k: int = setting(
        0, low=0, high=10_000_000,
        help="sample: keep only the k most likely tokens (0 = off; 1 is greedy).")
    top_p: float = setting(
        1.0, low=1e-6, high=1.0,
        help=("sample: keep the smallest set of most likely tokens whose probability reaches p "
              "(nucleus sampling, Holtzman et al. 2020; 1.0 = off)."))
    seed: int = setting(
        0, low=0, high=2**31 - 1,
        help=("sample: seed of the stateless RNG. The same seed, inputs and config give the same "
              "outputs, whatever the batch they fall in (each input's randomness is keyed by seed and "
              "position)."))
    max_length: int = setting(
        64, low=1, high=100_000,
        help="Cap on generated tokens (</s> included); also capped by the model's max_target_length.")
    time_limit_seconds: float = setting(
        30.0, low=0.0, high=7 * 24 * 3600,
        help=("Wall-clock budget for one `generate` call in seconds (0 = none): decoding stops at the "
              "next step after it runs out, returning what was generated so far with finished=False."))
    batch_size: int = setting(
        32, low=1, high=4096,
        help="Inputs decoded together (beam search runs batch_size * beam_width hypotheses at once).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_return > self.beam_width:
            raise ConfigError(
                f"num_return must be at most beam_width ({self.beam_width}), got {self.num_return}."
            )

    @property
    def n_best_size(self) -> int:
        """Hypotheses returned per input: num_return (or beam_width) for beam search, else 1."""
        if self.strategy != "beam":
            return 1
        return self.num_return or self.beam_width