"""Corpora as the app and the CLI use them: resolve a reference, inspect, register, load back.

A corpus reference is a file path or `sample:NAME` (a built-in corpus). A registered corpus keeps
its original bytes unchanged in `corpora/<id>/original.bin`, its report and its split, so every
run trained on it sees the same examples in the same split. Its id is derived from the bytes and
the reading config, so registering the same file twice gives the same corpus.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path

from textgen.core.errors import CorpusError
from textgen.core.fsutil import atomic_write_bytes, atomic_write_text
from textgen.data.config import CorpusConfig, TokenizerConfig
from textgen.data.corpus.reading import read_corpus
from textgen.data.corpus.records import Corpus, CorpusReport, Split
from textgen.data.corpus.report import build_report
from textgen.data.corpus.split import deduplicate, split_corpus
from textgen.data.samples import catalog
from textgen.store.database import CorpusRecord, RunStore

ORIGINAL_NAME = "original.bin"
REPORT_NAME = "report.json"


@dataclasses.dataclass(frozen=True)
class LoadedCorpus:
    """A corpus read and split, with its report: what training and the app work from."""

    corpus: Corpus
    split: Split
    origin: str  # "sample:NAME", "file" or "upload"
    label: str  # a display name only; never a path

    @functools.cached_property
    def report(self) -> CorpusReport:
        """The validation report, built when first asked for (a job reading its corpus back
        never does: 0.4 s each time on Multi30k's 29,000 pairs)."""
        return build_report(self.corpus, self.split)


def read_reference(reference: str, config: CorpusConfig) -> tuple[bytes, str, str]:
    """Bytes, origin and label of `sample:NAME` or a file path (size checked before reading)."""
    name = catalog.parse_sample_reference(reference)
    if name is not None:
        return catalog.sample_bytes(name), f"sample:{name}", name
    path = Path(reference)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CorpusError(
            f"no such file: {reference!r}. Give a path to a corpus file, or sample:NAME for a "
            f"built-in corpus ({', '.join(catalog.sample_names())})."
        ) from None
    except OSError as error:
        raise CorpusError(f"cannot read {reference!r}: {error.strerror}.") from None
    if not path.is_file():
        raise CorpusError(f"{reference!r} is not a regular file; give the path of a corpus file.")
    if size > config.max_bytes:
        raise CorpusError(
            f"the file is {size / 2**20:.1f} MB, over the {config.max_bytes / 2**20:.0f} MB cap; "
            "split it, or raise max_bytes."
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CorpusError(f"cannot read {reference!r}: {error.strerror}.") from None
    return data, "file", path.name


def parse(data: bytes, config: CorpusConfig) -> Corpus:
    """Bytes to examples under `config`: the one reading path for inspection, registration and training."""
    corpus = read_corpus(data, config)
    return deduplicate(corpus) if config.deduplicate else corpus


def load_bytes(data: bytes, config: CorpusConfig, *, origin: str, label: str) -> LoadedCorpus:
    corpus = parse(data, config)
    split = split_corpus(corpus, config)
    return LoadedCorpus(corpus, split, origin, label)


def load_reference(reference: str, config: CorpusConfig | None = None) -> LoadedCorpus:
    config = config or CorpusConfig()
    data, origin, label = read_reference(reference, config)
    return load_bytes(data, config, origin=origin, label=label)


def side_texts(corpus: Corpus) -> dict[str, list[str]]:
    """The texts a model reads and writes, per side: source and target, or the text's lines."""
    if corpus.is_pairs:
        return {"source": [e.source for e in corpus.examples], "target": [e.target for e in corpus.examples]}
    return {"text": [e.target for e in corpus.examples]}


def tokenizer_summary(loaded: LoadedCorpus, config: TokenizerConfig | None = None) -> dict:
    """Vocabulary size and out-of-vocabulary rate of a tokenizer trained on the training split.

    The OOV rate is measured on the validation and test splits: the share of their tokens that
    become <unk>, i.e. what a model trained on this corpus would fail to read or write.
    """
    from textgen.data.tokenizers import train_tokenizer

    config = config or TokenizerConfig()
    summary: dict = {"kind": config.kind, "vocab_size_cap": config.vocab_size}
    for side, texts in side_texts(loaded.corpus).items():
        tokenizer = train_tokenizer([texts[i] for i in loaded.split.train], config)
        summary[side] = {
            "vocabulary_size": tokenizer.vocab_size,
            "oov_rate_valid": round(tokenizer.oov_rate([texts[i] for i in loaded.split.valid]), 5),
            "oov_rate_test": round(tokenizer.oov_rate([texts[i] for i in loaded.split.test]), 5),
        }
    return summary


def corpus_id_for(data: bytes, config: CorpusConfig) -> str:
    digest = hashlib.sha256(data)
    digest.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    return "c-" + digest.hexdigest()[:12]


def register(store: RunStore, data: bytes, config: CorpusConfig, *, origin: str, label: str) -> CorpusRecord:
    """Validate, split and save a corpus in the store. Nothing is written if it is unusable."""
    loaded = load_bytes(data, config, origin=origin, label=label)
    report = json.dumps(loaded.report.to_dict(), indent=1)
    corpus_id = corpus_id_for(data, config)
    folder = store.corpus_dir(corpus_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / ORIGINAL_NAME, data)
    atomic_write_text(folder / REPORT_NAME, report)
    return store.add_corpus(
        corpus_id=corpus_id, label=label, origin=origin, sha256=loaded.corpus.sha256,
        format=loaded.corpus.format, num_examples=len(loaded.corpus.examples),
        config=config.to_dict(), split=loaded.split.to_dict(),
    )


def register_reference(
    store: RunStore, reference: str, config: CorpusConfig | None = None, *, label: str | None = None
) -> CorpusRecord:
    config = config or CorpusConfig()
    data, origin, default_label = read_reference(reference, config)
    return register(store, data, config, origin=origin, label=label or default_label)


def load_registered(store: RunStore, corpus_id: str) -> LoadedCorpus:
    """Read a registered corpus back exactly as it was split when registered."""
    record = store.get_corpus(corpus_id)
    config = CorpusConfig.from_dict(record.config)
    data = (store.corpus_dir(corpus_id) / ORIGINAL_NAME).read_bytes()
    corpus = parse(data, config)
    split = Split.from_dict(record.split)
    split.check_fits(corpus)
    return LoadedCorpus(corpus, split, record.origin, record.label)


def run_examples(
    store: RunStore, corpus_id: str, *, valid_corpus_id: str | None = None, test_corpus_id: str | None = None,
    loaded: LoadedCorpus | None = None,
) -> dict[str, list]:
    """The train / valid / test examples of a run.

    By default the corpus's own split. A held-out corpus given for valid or test replaces that
    part, and the corpus's own examples for it go to training instead (standard benchmarks come
    with their own validation and test files). `loaded`: the corpus `corpus_id` already read
    back, so it is not parsed again.
    """
    if loaded is None:
        loaded = load_registered(store, corpus_id)
    examples = loaded.corpus.examples
    parts = {name: [examples[i] for i in getattr(loaded.split, name)] for name in ("train", "valid", "test")}
    for name, external in (("valid", valid_corpus_id), ("test", test_corpus_id)):
        if external is not None:
            parts["train"] += parts[name]
            parts[name] = list(load_registered(store, external).corpus.examples)
    return parts


def saved_report(store: RunStore, corpus_id: str) -> dict:
    path = store.corpus_dir(corpus_id) / REPORT_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_sample(name: str, out: str | os.PathLike, *, size: int | None, seed: int) -> Path:
    path = Path(out)
    atomic_write_bytes(path, catalog.sample_bytes(name, size=size, seed=seed))
    return path
