"""`DecodingConfig`: how outputs are generated. Saved with every evaluation; `--set key=value`
overrides any field."""

from __future__ import annotations

import dataclasses

from textgen.core.config import ConfigMixin, check_choice, check_range
from textgen.core.errors import ConfigError

STRATEGIES = ("greedy", "beam", "sample")
# When a beam search row stops once its n-best pool is full: when no live hypothesis can beat
# the pool's worst if it ended at its current length, or at any length up to the cap.
BEAM_STOPPING = ("current_length", "max_length")


@dataclasses.dataclass(frozen=True)
class DecodingConfig(ConfigMixin):
    """One decoding setup. Fields a strategy does not read are ignored by it."""

    # greedy (most likely next token each step), beam (beam search), or sample (random sampling
    # with temperature, top-k and top-p).
    strategy: str = "greedy"
    # beam: hypotheses kept per input. 4-5 is the usual sweet spot for translation.
    beam_width: int = 4
    # beam: alpha of the GNMT length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016); scores
    # are sum(log p) / penalty. 0 ranks by raw log-probability (favours short outputs); 0.6 is
    # the GNMT / Marian value; 1.0 is close to per-token averaging.
    length_penalty: float = 0.6
    # beam: size of the n-best list returned (0 = beam_width; at most beam_width).
    num_return: int = 0
    # beam: when a row stops once its n-best pool is full. "current_length" (Hugging Face's
    # default rule): when its best live hypothesis, scored as if it ended now, cannot beat the
    # pool's worst. "max_length": only when none could at any length up to the cap (with future
    # tokens free), so no later hypothesis can still win; slower. On Multi30k test2016 with the
    # `base` Transformer, beam 5: 17.7 steps a row instead of 22.2, 49 s instead of 66, and the
    # same 1,000 outputs.
    beam_stopping: str = "current_length"
    # sample: logits are divided by it. Below 1 sharpens (near 0 is greedy), above 1 flattens.
    temperature: float = 1.0
    # sample: keep only the k most likely tokens (0 = off; 1 is greedy).
    top_k: int = 0
    # sample: keep the smallest set of most likely tokens whose probability reaches p
    # (nucleus sampling, Holtzman et al. 2020; 1.0 = off).
    top_p: float = 1.0
    # sample: seed of the stateless RNG. The same seed, inputs and config give the same outputs,
    # whatever the batch they fall in (each input's randomness is keyed by seed and position).
    seed: int = 0
    # Cap on generated tokens (</s> included); also capped by the model's max_target_length.
    max_length: int = 64
    # Wall-clock budget for one `generate` call in seconds (0 = none): decoding stops at the next
    # step after it runs out, returning what was generated so far with finished=False.
    time_limit_seconds: float = 30.0
    # Inputs decoded together (beam search runs batch_size * beam_width hypotheses at once).
    batch_size: int = 32

    def __post_init__(self) -> None:
        check_choice("strategy", self.strategy, STRATEGIES)
        check_range("beam_width", self.beam_width, 1, 64)
        check_range("length_penalty", self.length_penalty, 0.0, 5.0)
        check_range("num_return", self.num_return, 0, 64)
        check_choice("beam_stopping", self.beam_stopping, BEAM_STOPPING)
        check_range("temperature", self.temperature, 1e-6, 100.0)
        check_range("top_k", self.top_k, 0, 10_000_000)
        check_range("top_p", self.top_p, 1e-6, 1.0)
        check_range("seed", self.seed, 0, 2**31 - 1)
        check_range("max_length", self.max_length, 1, 100_000)  # ModelConfig's own limit
        check_range("time_limit_seconds", self.time_limit_seconds, 0.0, 7 * 24 * 3600)
        check_range("batch_size", self.batch_size, 1, 4096)
        for name in ("beam_width", "num_return", "top_k", "seed", "max_length", "batch_size"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be an integer, got {getattr(self, name)!r}.")
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
