"""Checking a corpus before it is saved: read, validated and split in memory, with a tokenizer's
figures and a preview, for the Corpus page's "Check"; and its length histograms as rows."""

from __future__ import annotations

import dataclasses
from typing import Any

from textgen.data import registry
from textgen.data.config import CorpusConfig, TokenizerConfig

# Examples shown in a corpus check's preview table.
PREVIEW_ROWS = 50


@dataclasses.dataclass(frozen=True)
class CorpusCheck:
    """A corpus read, validated and split in memory, nothing saved: what "Check" shows."""

    report: dict[str, Any]  # CorpusReport.to_dict()
    tokenizer: dict[str, Any]  # registry.tokenizer_summary(...)
    preview: list[dict[str, Any]]  # the first PREVIEW_ROWS examples: line, source, target (raw text)
    is_pairs: bool


def check_corpus(data: bytes, config: CorpusConfig, tokenizer: TokenizerConfig | None = None, *,
                 preview_rows: int = PREVIEW_ROWS) -> CorpusCheck:
    """Read `data` as `registry.register` would, without registering it.

    Raises CorpusError (unusable file) or ConfigError (bad reading settings) with what to do.
    The preview holds the raw text: escape it for display (it is untrusted).
    """
    loaded = registry.load_bytes(data, config, origin="upload", label="")
    summary = registry.tokenizer_summary(loaded, tokenizer or TokenizerConfig())
    preview = [{"line": e.line, "source": e.source, "target": e.target}
               for e in loaded.corpus.examples[:preview_rows]]
    return CorpusCheck(loaded.report.to_dict(), summary, preview, loaded.corpus.is_pairs)


def histogram_bins(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A report length summary's histogram as rows {"bin": "3-4", "low": 3, "high": 4, "count": n}.

    The report's bin k counts integer lengths in [edges[k], edges[k+1]); `high` is inclusive, so
    a bin of width 1 reads "7" rather than "7-8".
    """
    histogram = summary.get("histogram") or {}
    edges, counts = list(histogram.get("edges", [])), list(histogram.get("counts", []))
    if len(edges) != len(counts) + 1:
        raise ValueError(f"a histogram needs one more edge than counts, got {len(edges)} edges "
                         f"and {len(counts)} counts.")
    rows = []
    for low, high, count in zip(edges, edges[1:], counts):
        last = high - 1
        rows.append({"bin": str(low) if last <= low else f"{low}-{last}", "low": low, "high": last,
                     "count": int(count)})
    return rows
