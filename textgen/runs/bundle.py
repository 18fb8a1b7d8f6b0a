"""A run to take away or bring in: the export bundle and its import.

The bundle is a zip built in memory with the run folder's own layout, so unzipping it gives a
folder that `textgen.training.artifacts.load_trained` loads like any run::

    <run_id>/run.json                       RunConfig
    <run_id>/run_record.json                id, label, kind, status, times (the store's row)
    <run_id>/source_tokenizer.json          (seq2seq models only)
    <run_id>/target_tokenizer.json
    <run_id>/checkpoints/index.json         {"best": NAME, "last": NAME}: the exported checkpoint
    <run_id>/checkpoints/NAME/              config.json, model.weights.h5, state.json
    <run_id>/metrics.csv                    every logged value
    <run_id>/README.txt                     how to load it

Member names are built from ids and fixed file names only (never from a label). The optimizer
state is left out: a bundle is for using a model, not for resuming its training.

`import_bundle` takes such a zip back as a new run. It reads only these members, each checked
against its schema before anything is written: run.json and config.json as our frozen configs
(unknown keys, class or module names are refused), the tokenizers as our JSON format with inline
vocabularies, the weights as an HDF5 file loaded into the model our code builds from the config.
A `.keras` file, a pickle, any other member, an absolute or `..` path, a link, an oversized or
over-compressed member (a zip bomb) is refused with the reason, and nothing is left behind.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
import zipfile
from typing import Any

from textgen.core.errors import ConfigError, StoreError
from textgen.runs.manage import LABEL_MAX_CHARS, clean_label, metrics_csv
from textgen.store.database import RunRecord, RunStore
from textgen.training import artifacts

_CHECKPOINT_NAME = re.compile(r"^ckpt-[0-9]+$")
_CHECKPOINT_FILES = ("config.json", "model.weights.h5", artifacts.STATE_FILE)
_README = """TextGen Lab run {run_id} ({kind}), checkpoint {checkpoint} (step {step}).

Unzip, then in Python (with textgen installed):

    from pathlib import Path
    from textgen.training import artifacts
    from textgen.decoding import DecodingConfig, generate

    trained = artifacts.load_trained(Path("{run_id}"))
    outputs = generate(trained.model, trained.source_tokenizer, trained.target_tokenizer,
                       ["your input"], DecodingConfig())
    print(outputs[0].output)

run.json is the full configuration (corpus id, tokenizer, model, training); metrics.csv holds
every logged value (split, name, value by step).
"""


def bundle_file_name(run_id: str) -> str:
    """The download's file name: from the id only (checked), never from the (untrusted) label."""
    from textgen.store.database import check_id

    return f"{check_id(run_id, 'run id')}-bundle.zip"


def export_bundle(store: RunStore, run_id: str, checkpoint: str = "best") -> bytes:
    """The run's zip bundle (layout in the module docstring) as bytes.

    checkpoint: "best" or "last". Raises StoreError when the run has no checkpoint yet.
    """
    run = store.get_run(run_id)
    run_dir = store.run_dir(run.id)
    info = artifacts.Checkpoints(run_dir).get(checkpoint)
    if info is None:
        raise StoreError(f"run {run.id} has no checkpoint yet; one is written at the first evaluation, "
                         "so there is nothing to export.")
    if not _CHECKPOINT_NAME.match(info.name):
        raise StoreError(f"run {run.id} has an unexpected checkpoint name {info.name!r}.")
    config_path = run_dir / artifacts.RUN_CONFIG_FILE
    if not config_path.exists():
        raise StoreError(f"run {run.id} has no {artifacts.RUN_CONFIG_FILE}; was it trained?")
    record = {"id": run.id, "label": run.label, "kind": run.kind, "status": run.status,
              "corpus_id": run.corpus_id, "created_at": run.created_at,
              "started_at": run.started_at, "finished_at": run.finished_at,
              "checkpoint": {"name": info.name, "step": info.step, "epoch": info.epoch,
                             "metrics": info.metrics}}
    root = run.id
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.write(config_path, f"{root}/{artifacts.RUN_CONFIG_FILE}")
        bundle.writestr(f"{root}/run_record.json", json.dumps(record, indent=2, ensure_ascii=False))
        for name in (artifacts.SOURCE_TOKENIZER_FILE, artifacts.TARGET_TOKENIZER_FILE):
            if (run_dir / name).exists():
                bundle.write(run_dir / name, f"{root}/{name}")
        folder = f"{root}/{artifacts.CHECKPOINTS_DIR}"
        bundle.writestr(f"{folder}/{artifacts.INDEX_FILE}",
                        json.dumps({"best": info.name, "last": info.name, "history": []}))
        for name in _CHECKPOINT_FILES:
            # Weights hardly compress; storing them saves time.
            compression = zipfile.ZIP_STORED if name.endswith(".h5") else zipfile.ZIP_DEFLATED
            bundle.write(info.path / name, f"{folder}/{info.name}/{name}", compress_type=compression)
        bundle.writestr(f"{root}/metrics.csv", metrics_csv(store, [run.id]))
        bundle.writestr(f"{root}/README.txt", _README.format(run_id=run.id, kind=run.kind,
                                                             checkpoint=info.name, step=info.step))
    return buffer.getvalue()


# -- import ------------------------------------------------------------------------------------

# A bundle is a model to use: config, weights, tokenizers. Anything else in the zip is refused.
BUNDLE_MAX_BYTES = 1024 * 2**20  # the zip file itself
MEMBER_MAX_BYTES = {  # per member, uncompressed, by file name
    "model.weights.h5": 1024 * 2**20,
    "source_tokenizer.json": 64 * 2**20,
    "target_tokenizer.json": 64 * 2**20,
    "metrics.csv": 256 * 2**20,
}
JSON_MAX_BYTES = 2**20  # run.json, run_record.json, index.json, config.json, state.json
MAX_MEMBERS = 32
# Deflate reaches about 1000:1 on zeros; a real bundle's JSON stays far below this.
MAX_COMPRESSION_RATIO = 200
_MEMBER_ID = re.compile(r"^[a-z]-[0-9a-f]{12}$")
_ALLOWED_FILES = {"run.json", "run_record.json", artifacts.SOURCE_TOKENIZER_FILE, artifacts.TARGET_TOKENIZER_FILE,
                  "metrics.csv", "README.txt", f"{artifacts.CHECKPOINTS_DIR}/{artifacts.INDEX_FILE}"}
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_TOKENIZER_KEYS = {"format", "format_version", "config", "huggingface"}
_HF_KEYS = {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
            "post_processor", "decoder", "model"}
_HF_MODEL_TYPES = {"WordLevel", "BPE", "WordPiece"}
_HF_MODEL_KEYS = {"type", "vocab", "unk_token", "dropout", "continuing_subword_prefix", "end_of_word_suffix",
                  "fuse_unk", "byte_fallback", "ignore_merges", "merges", "max_input_chars_per_word"}


class BundleError(ConfigError):
    """A bundle that cannot be imported: what is wrong with it, and nothing was written."""


def _refuse(why: str) -> BundleError:
    return BundleError(f"this bundle cannot be imported: {why} A TextGen bundle holds only run.json, "
                       "the JSON tokenizers and one checkpoint (config.json, model.weights.h5, state.json); "
                       "export one from the Runs page or `python -m textgen export RUN`.")


def _member_kind(relative: str) -> str | None:
    """The role of a member path inside the bundle's folder, or None if a bundle has no such file."""
    if relative in _ALLOWED_FILES:
        return relative
    parts = relative.split("/")
    if (len(parts) == 3 and parts[0] == artifacts.CHECKPOINTS_DIR and _CHECKPOINT_NAME.match(parts[1])
            and parts[2] in _CHECKPOINT_FILES):
        return f"checkpoint/{parts[2]}"
    return None


def _check_member_name(name: str) -> None:
    if (not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ":" in name
            or any(part in ("..", ".") for part in name.split("/"))):
        raise _refuse(f"the member name {name!r} is a path outside the bundle (absolute, with '..' or a drive).")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, reading at most `limit` (the header's sizes are not trusted)."""
    if info.file_size > limit:
        raise _refuse(f"{info.filename} is {info.file_size:,} bytes uncompressed, over the {limit:,} allowed.")
    if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
        raise _refuse(f"{info.filename} expands {info.file_size / info.compress_size:.0f} times "
                      f"(over {MAX_COMPRESSION_RATIO}): a zip bomb is refused.")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _refuse(f"{info.filename} holds more than the {limit:,} bytes allowed.")
    return data


def _json_member(name: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _refuse(f"{name} is not valid JSON ({error}).") from None


def _check_tokenizer(name: str, data: Any) -> None:
    """Our tokenizer file's schema: vocabularies are inline token -> id maps, never file names."""
    if not isinstance(data, dict) or set(data) != _TOKENIZER_KEYS:
        raise _refuse(f"{name} is not a TextGen tokenizer (expected exactly the keys {sorted(_TOKENIZER_KEYS)}).")
    hf = data["huggingface"]
    if not isinstance(hf, dict) or not set(hf) <= _HF_KEYS or not isinstance(hf.get("model"), dict):
        raise _refuse(f"{name} has an unexpected tokenizer layout.")
    model = hf["model"]
    unknown = set(model) - _HF_MODEL_KEYS
    if unknown or model.get("type") not in _HF_MODEL_TYPES:
        raise _refuse(f"{name}: tokenizer model {model.get('type')!r} with keys {sorted(unknown)} is not one of ours.")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(
            isinstance(token, str) and isinstance(index, int) and not isinstance(index, bool)
            for token, index in vocab.items()):
        raise _refuse(f"{name}: the vocabulary must be an inline map of tokens to ids (a path or file name "
                      "is not accepted).")
    merges = model.get("merges", [])
    if not isinstance(merges, list) or not all(
            isinstance(m, str) or (isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m))
            for m in merges):
        raise _refuse(f"{name}: merges must be a list of token pairs.")


@dataclasses.dataclass(frozen=True)
class BundleParts:
    """A bundle's contents, each checked against its schema (`read_bundle`); nothing written."""

    run_config: artifacts.RunConfig
    record: dict[str, Any]  # the exporting store's row (id, label, status, times); may be empty
    checkpoint: str  # the checkpoint folder's name (ckpt-N)
    state: dict[str, Any]  # step, epoch, time, metrics of that checkpoint
    tokenizers: dict[str, str]  # file name -> our tokenizer JSON, re-serialised
    weights: bytes  # model.weights.h5


def read_bundle(data: bytes) -> BundleParts:
    """Check a bundle zip against the schema without writing anything and return its parts."""
    if len(data) > BUNDLE_MAX_BYTES:
        raise _refuse(f"it is {len(data):,} bytes, over the {BUNDLE_MAX_BYTES:,} allowed.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as error:
        raise _refuse(f"it is not a zip file ({error}).") from None
    with archive:
        members, checkpoint = _checked_members(archive)

        def read(kind: str) -> bytes:
            return _read_member(archive, members[kind], MEMBER_MAX_BYTES.get(kind.split("/")[-1], JSON_MAX_BYTES))

        run_config = _read_run_config(read)
        state = _read_state(read)
        record: dict[str, Any] = {}
        if "run_record.json" in members:
            loaded = _json_member("run_record.json", read("run_record.json"))
            record = loaded if isinstance(loaded, dict) else {}
        tokenizers = _read_tokenizers(read, members, run_config)
        weights = read("checkpoint/model.weights.h5")
        if not weights.startswith(_HDF5_MAGIC):
            raise _refuse("model.weights.h5 is not an HDF5 weights file.")
    return BundleParts(run_config, record, checkpoint, state, tokenizers, weights)


def _checked_members(archive: zipfile.ZipFile) -> tuple[dict[str, zipfile.ZipInfo], str]:
    """The bundle's members by kind (`_member_kind`) and its one checkpoint's name; refuses a
    bundle with too many, unsafe, oversized, unknown, repeated or missing members."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _refuse(f"it has {len(infos)} members, over the {MAX_MEMBERS} allowed.")
    roots: set[str] = set()
    members: dict[str, zipfile.ZipInfo] = {}
    checkpoint_names: set[str] = set()
    for info in infos:
        _check_member_name(info.filename)
        mode = info.external_attr >> 16
        if mode and (mode & 0o170000) not in (0, 0o100000, 0o040000):
            raise _refuse(f"{info.filename} is a link or a special file.")
        root, _, relative = info.filename.partition("/")
        roots.add(root)
        if len(roots) != 1 or not _MEMBER_ID.match(root):
            raise _refuse("it must hold exactly one run folder named by its id (such as r-3f9a0c1b2d4e/).")
        kind = _checked_member(info, relative)
        if kind is None:  # a folder
            continue
        if kind.startswith("checkpoint/"):
            checkpoint_names.add(relative.split("/")[1])
        if kind in members:
            raise _refuse(f"{info.filename} appears twice.")
        members[kind] = info
    if not members:
        raise _refuse("it is empty.")
    if len(checkpoint_names) != 1:
        raise _refuse(f"it must hold exactly one checkpoint, found {len(checkpoint_names)}.")
    missing = [k for k in ("run.json", artifacts.TARGET_TOKENIZER_FILE, "checkpoint/config.json",
                           "checkpoint/model.weights.h5", "checkpoint/state.json") if k not in members]
    if missing:
        raise _refuse(f"it lacks {', '.join(missing)}.")
    return members, next(iter(checkpoint_names))


def _checked_member(info: zipfile.ZipInfo, relative: str) -> str | None:
    """One member's kind, after checking its encryption, size and compression; None for a folder."""
    if info.is_dir():
        return None
    if info.flag_bits & 0x1:
        raise _refuse(f"{info.filename} is encrypted.")
    if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
        raise _refuse(f"{info.filename} expands {info.file_size / info.compress_size:.0f} times "
                      f"(over {MAX_COMPRESSION_RATIO}): a zip bomb is refused.")
    limit = MEMBER_MAX_BYTES.get(relative.rsplit("/", 1)[-1], JSON_MAX_BYTES)
    if info.file_size > limit:
        raise _refuse(f"{info.filename} is {info.file_size:,} bytes uncompressed, over the {limit:,} allowed.")
    kind = _member_kind(relative)
    if kind is None:
        if relative.endswith(".keras"):
            what = "a Keras .keras file (it can carry code, such as Lambda layers)"
        elif relative.endswith((".py", ".pkl", ".pickle", ".pb", ".so", ".npy", ".npz")):
            what = "code or a pickle"
        else:
            what = "not part of a bundle"
        raise _refuse(f"{info.filename} is {what}.")
    return kind


def _read_run_config(read) -> artifacts.RunConfig:
    """run.json as our RunConfig (known keys only, ids as ids), matching the checkpoint's config.json."""
    raw_config = _json_member("run.json", read("run.json"))
    known = {f.name for f in dataclasses.fields(artifacts.RunConfig)}
    if not isinstance(raw_config, dict) or not set(raw_config) <= known:
        extra = sorted(set(raw_config) - known) if isinstance(raw_config, dict) else []
        raise _refuse(f"run.json is not a TextGen run config (unexpected keys {extra}).")
    for key in ("corpus_id", "valid_corpus_id", "test_corpus_id"):
        value = raw_config.get(key)
        if value is not None and not (isinstance(value, str) and _MEMBER_ID.match(value)):
            raise _refuse(f"run.json's {key} {str(value)[:60]!r} is not an id.")
    try:
        run_config = artifacts.RunConfig.from_dict(raw_config)
    except (ConfigError, TypeError, AttributeError) as error:
        raise _refuse(f"run.json is not a TextGen run config: {error}") from None
    try:
        model_config = type(run_config.model).from_dict(_json_member("config.json", read("checkpoint/config.json")))
    except (ConfigError, TypeError) as error:
        raise _refuse(f"the checkpoint's config.json is not a TextGen model config: {error}") from None
    if model_config != run_config.model:
        raise _refuse("the checkpoint's config.json differs from the model in run.json.")
    return run_config


def _read_state(read) -> dict[str, Any]:
    state = _json_member("state.json", read("checkpoint/state.json"))
    try:
        return {"step": int(state["step"]), "epoch": float(state["epoch"]), "time": float(state["time"]),
                "metrics": {str(k): float(v) for k, v in dict(state.get("metrics", {})).items()}}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise _refuse("the checkpoint's state.json needs a step, an epoch, a time and numeric metrics.") from None


def _read_tokenizers(read, members: dict[str, zipfile.ZipInfo], run_config: artifacts.RunConfig) -> dict[str, str]:
    """The tokenizers the model needs, each our JSON format, matching run.json's settings and the
    model's vocabulary sizes."""
    from textgen.data.tokenizers import Tokenizer

    names = [artifacts.TARGET_TOKENIZER_FILE]
    if not run_config.model.is_decoder_only:
        names.insert(0, artifacts.SOURCE_TOKENIZER_FILE)
        if artifacts.SOURCE_TOKENIZER_FILE not in members:
            raise _refuse(f"a {run_config.model.kind} model needs {artifacts.SOURCE_TOKENIZER_FILE}.")
    vocab_sizes = {artifacts.TARGET_TOKENIZER_FILE: run_config.model.target_vocab_size,
                   artifacts.SOURCE_TOKENIZER_FILE: run_config.model.source_vocab_size}
    tokenizers: dict[str, str] = {}
    for name in names:
        text = read(name).decode("utf-8", errors="strict")
        _check_tokenizer(name, _json_member(name, text.encode("utf-8")))
        try:
            tokenizer = Tokenizer.from_json(text)
        except ConfigError as error:
            raise _refuse(f"{name}: {error}") from None
        if tokenizer.config != run_config.tokenizer:
            raise _refuse(f"{name} does not match the tokenizer settings in run.json.")
        if tokenizer.vocab_size != vocab_sizes[name]:
            raise _refuse(f"{name}'s vocabulary size differs from the model's.")
        tokenizers[name] = tokenizer.to_json()
    return tokenizers


def import_bundle(store: RunStore, data: bytes, label: str | None = None) -> RunRecord:
    """Import an exported bundle (bytes of the zip) as a new finished run with a new id.

    Only our JSON config, `.weights.h5` and JSON tokenizers are read, each checked against its
    schema (see `read_bundle`); the model is rebuilt from the config with our own classes and the
    weights are loaded into it, so nothing in the file is ever executed (no `.keras`, no pickles,
    no Lambda layers, no class names). Raises BundleError (a ConfigError) and leaves nothing
    behind when anything is wrong.
    """
    from textgen.core.fsutil import atomic_write_bytes, atomic_write_text
    from textgen.models.persistence import CONFIG_FILE, WEIGHTS_FILE, load_model_dir

    parts = read_bundle(data)
    config = parts.run_config
    original = parts.record.get("label")
    name = label if label is not None else (original if isinstance(original, str) and original.strip()
                                            else f"imported {config.model.kind}")
    name = clean_label(name[:LABEL_MAX_CHARS] if label is None else name)
    corpus_id = config.corpus_id
    try:
        store.get_corpus(corpus_id)
    except (StoreError, TypeError):
        corpus_id = None  # trained elsewhere: the run keeps its config, without a corpus here
    run = store.create_run(label=name, kind=config.model.kind, config=config.to_dict(), corpus_id=corpus_id,
                           status="finished")
    run_dir = store.run_dir(run.id)
    try:
        artifacts.save_run_config(run_dir, config)
        for file_name, text in parts.tokenizers.items():
            atomic_write_text(run_dir / file_name, text)
        checkpoint_dir = run_dir / artifacts.CHECKPOINTS_DIR / parts.checkpoint
        checkpoint_dir.mkdir(parents=True)
        atomic_write_bytes(checkpoint_dir / WEIGHTS_FILE, parts.weights)
        atomic_write_text(checkpoint_dir / CONFIG_FILE, config.model.to_json())
        atomic_write_text(checkpoint_dir / artifacts.STATE_FILE, json.dumps(parts.state))
        load_model_dir(checkpoint_dir)  # the weights must fit the model built from the config
        atomic_write_text(run_dir / artifacts.CHECKPOINTS_DIR / artifacts.INDEX_FILE,
                          json.dumps({"best": parts.checkpoint, "last": parts.checkpoint, "history": []}))
    except BaseException as error:
        store.delete_run(run.id)
        if isinstance(error, StoreError):
            raise _refuse(str(error)) from None
        raise
    now = time.time()
    return store.update_run(run.id, started_at=now, finished_at=now, error=None)
