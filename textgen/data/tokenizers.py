"""Text to token ids and back, built on Hugging Face `tokenizers`.

One `Tokenizer` wraps a trained HF tokenizer plus the `TokenizerConfig` that made it; both are saved
together in one JSON file. Every text is passed through `textgen.core.text.normalize` (NFC, in-line
separators to spaces) before encoding, so training, generation and scoring see the same string.

Special tokens have fixed ids in every vocabulary: <pad>=0, <unk>=1, <s>=2 (start), </s>=3 (end).
They live in the model's vocabulary only, not as HF "added tokens", so a literal "</s>" typed in a
corpus is encoded as ordinary text and can never inject an end token.

What round-trips (`decode(encode(text)) == normalize(text)`, lower-cased when `lowercase`):

- char: every text whose characters are in the vocabulary (emoji, CJK, RTL, combining marks
  left after NFC). One token per Unicode code point; decode concatenates.
- word: text whose words and punctuation are all in the vocabulary. A word carries a "▁" prefix
  when a space precedes it ("▁Hello" and "Hello" after "(" or a newline are different tokens);
  tabs and line breaks are tokens of their own; a run of spaces round-trips when the bare "▁"
  token is in the vocabulary (it is once training text has two spaces or " ,"). Not exact: a
  space at the very start of the text is dropped, and an out-of-vocabulary word comes back as
  "<unk>" with a space before it (also where the unknown token was punctuation that had none).
- bpe: byte-level BPE, every text exactly (all 256 bytes are in the vocabulary; never <unk>).
- wordpiece: spacing is not kept; decode puts a space between words and the HF clean-up removes
  it before common punctuation ("Hello , world" -> "Hello, world"), newlines become spaces, and a
  word that cannot be spelled from the pieces becomes one "<unk>".

`lowercase=True` adds a lower-casing normaliser: encoding ignores case and generated text is
lower-case.
"""

from __future__ import annotations

import codecs
import json
import os
import unicodedata
from typing import Any, Iterable, Iterator, Sequence

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from textgen.core.errors import ConfigError, CorpusError
from textgen.core.fsutil import atomic_write_text
from textgen.core.text import normalize
from textgen.data.config import TokenizerConfig

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

FILE_FORMAT = "textgen-tokenizer"
FILE_FORMAT_VERSION = 1

SPACE_MARKER = "▁"  # U+2581, the SentencePiece space marker; also used in token labels
_BYTE_LEVEL_ALPHABET_SIZE = 256
_WORDPIECE_PREFIX = "##"
# Whitespace other than the plain space: each such character is its own token in "word".
_OTHER_WHITESPACE = r"[^\S ]"
_LABEL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted (e.g. "Ġ" -> 0x20)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


_BYTE_DECODER = _byte_decoder()


def _build_hf(config: TokenizerConfig) -> tuple[HFTokenizer, Any]:
    """An untrained HF tokenizer and its trainer for `config.kind`."""
    kind = config.kind
    special = list(SPECIAL_TOKENS)
    common = dict(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=special,
        show_progress=False,
    )
    if kind == "char":
        hf = HFTokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        hf.decoder = decoders.Fuse()
        trainer = trainers.WordLevelTrainer(**common)
    elif kind == "word":
        hf = HFTokenizer(models.WordLevel(unk_token=UNK_TOKEN))
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_OTHER_WHITESPACE), behavior="isolated"),
            pre_tokenizers.Metaspace(replacement=SPACE_MARKER, prepend_scheme="first", split=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ])
        hf.decoder = decoders.Metaspace(replacement=SPACE_MARKER, prepend_scheme="first", split=True)
        trainer = trainers.WordLevelTrainer(**common)
    elif kind == "bpe":
        minimum = _BYTE_LEVEL_ALPHABET_SIZE + len(SPECIAL_TOKENS)
        if config.vocab_size < minimum:
            raise ConfigError(
                f"vocab_size must be at least {minimum} for byte-level BPE (256 bytes + "
                f"{len(SPECIAL_TOKENS)} special tokens), got {config.vocab_size}. "
                "Use a larger vocab_size or the char tokenizer."
            )
        hf = HFTokenizer(models.BPE(unk_token=UNK_TOKEN))
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **common)
    elif kind == "wordpiece":
        hf = HFTokenizer(models.WordPiece(unk_token=UNK_TOKEN, continuing_subword_prefix=_WORDPIECE_PREFIX))
        hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        hf.decoder = decoders.WordPiece(prefix=_WORDPIECE_PREFIX, cleanup=True)
        # The alphabet (single characters and their "##" forms) counts against the cap too.
        trainer = trainers.WordPieceTrainer(
            continuing_subword_prefix=_WORDPIECE_PREFIX,
            limit_alphabet=max(1, (config.vocab_size - len(SPECIAL_TOKENS)) // 2),
            **common,
        )
    else:  # TokenizerConfig already refuses other kinds
        raise ConfigError(f"unknown tokenizer kind {kind!r}.")
    steps: list[Any] = [normalizers.NFC()]
    if config.lowercase:
        steps.append(normalizers.Lowercase())
    hf.normalizer = normalizers.Sequence(steps)
    return hf, trainer


def _without_added_tokens(hf: HFTokenizer) -> HFTokenizer:
    """Drop the HF added-token table so "<s>" in a text is text, not a special token.

    The trainer put the special tokens first in the model vocabulary; they keep their ids there.
    """
    data = json.loads(hf.to_str())
    data["added_tokens"] = []
    return HFTokenizer.from_str(json.dumps(data))


def _check_special_ids(hf: HFTokenizer) -> None:
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        if hf.token_to_id(token) != expected_id:
            raise ConfigError(
                f"not a TextGen tokenizer: special token {token} must have id {expected_id}, "
                f"found {hf.token_to_id(token)}."
            )


def _readable(text: str) -> str:
    """Spaces as "▁", line breaks and tabs escaped, other control characters as \\uXXXX."""
    out = []
    for ch in text:
        if ch == " ":
            out.append(SPACE_MARKER)
        elif ch in _LABEL_ESCAPES:
            out.append(_LABEL_ESCAPES[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class Tokenizer:
    """A trained tokenizer. Create with `train_tokenizer`, `Tokenizer.load` or `from_json`."""

    pad_id = PAD_ID
    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID

    def __init__(self, hf_tokenizer: HFTokenizer, config: TokenizerConfig) -> None:
        _check_special_ids(hf_tokenizer)
        self._hf = hf_tokenizer
        self.config = config
        self.kind = config.kind
        self._encode_batch = getattr(hf_tokenizer, "encode_batch_fast", hf_tokenizer.encode_batch)
        # The char tokenizer maps each code point of the normalised text to its id (<unk> when
        # not in the vocabulary); a dictionary lookup does that much faster than the HF pipeline
        # (bench/RESULTS.md), with the same ids (tested).
        # `normalize` already applies NFC, the HF normalizer's only step without lowercasing.
        self._char_ids: dict[str, int] | None = None
        if config.kind == "char" and not config.lowercase:
            self._char_ids = {token: id for token, id in hf_tokenizer.get_vocab().items() if len(token) == 1}

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        return self._hf.get_vocab_size(with_added_tokens=True)

    @property
    def hf_tokenizer(self) -> HFTokenizer:
        """The underlying HF tokenizer (does not apply `textgen.core.text.normalize` by itself)."""
        return self._hf

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        if self._char_ids is not None:
            lookup = self._char_ids.get
            ids = [lookup(character, UNK_ID) for character in normalize(text)]
        else:
            ids = self._hf.encode(normalize(text), add_special_tokens=False).ids
        return self._wrap(ids, add_bos, add_eos)

    def encode_batch(
        self, texts: Sequence[str], *, add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        if not texts:
            return []
        encodings = self._encode_batch([normalize(t) for t in texts], add_special_tokens=False)
        return [self._wrap(e.ids, add_bos, add_eos) for e in encodings]

    @staticmethod
    def _wrap(ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
        if add_bos:
            ids = [BOS_ID, *ids]
        if add_eos:
            ids = [*ids, EOS_ID]
        return ids

    # -- decoding -----------------------------------------------------------------------------
    def _clean_ids(self, ids: Sequence[int], skip_special_tokens: bool) -> list[int]:
        size = self.vocab_size
        out = [int(i) for i in ids]
        for i in out:
            if not 0 <= i < size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{size - 1}).")
        if skip_special_tokens:
            # <unk> stays visible: hiding it would make a wrong output look fluent.
            out = [i for i in out if i not in (PAD_ID, BOS_ID, EOS_ID)]
        return out

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text for `ids`. Stops at nothing: the caller truncates at </s>. With
        skip_special_tokens, <pad>, <s> and </s> are dropped and <unk> is kept."""
        ids = self._clean_ids(ids, skip_special_tokens)
        if self.kind == "word" and UNK_ID in ids:
            return self._decode_word_with_unk(ids)
        return self._hf.decode(ids, skip_special_tokens=False)

    def _decode_word_with_unk(self, ids: list[int]) -> str:
        # The unknown pre-token was "▁word" far more often than bare punctuation: give <unk> the
        # space back so "Hello zebra" decodes to "Hello <unk>", not "Hello<unk>".
        tokens = [SPACE_MARKER + UNK_TOKEN if i == UNK_ID else self.id_to_token(i) for i in ids]
        return self._hf.decoder.decode(tokens)

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, skip_special_tokens: bool = True
    ) -> list[str]:
        if not batch:
            return []
        if self.kind == "word":
            return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]
        cleaned = [self._clean_ids(ids, skip_special_tokens) for ids in batch]
        return self._hf.decode_batch(cleaned, skip_special_tokens=False)

    # -- inspection ---------------------------------------------------------------------------
    def id_to_token(self, id: int) -> str:
        token = self._hf.id_to_token(int(id))
        if token is None:
            raise ValueError(f"token id {id} is outside the vocabulary (0..{self.vocab_size - 1}).")
        return token

    def token_to_id(self, token: str) -> int | None:
        return self._hf.token_to_id(token)

    def token_label(self, id: int) -> str:
        """A readable label for one token: a preceding space shows as "▁", byte-level tokens are
        turned back into text (bytes of an incomplete character as \\xNN), "\\n" for newline."""
        token = self.id_to_token(id)
        if int(id) < len(SPECIAL_TOKENS):
            return token
        if self.kind == "bpe":
            raw = bytes(_BYTE_DECODER.get(ch, ord("?")) for ch in token)
            return _readable(raw.decode("utf-8", errors="backslashreplace"))
        if self.kind == "word":
            # "▁" already marks a space; escape only the other whitespace tokens.
            return _readable(token.replace(SPACE_MARKER, " "))
        return _readable(token)  # char: " " -> "▁"; wordpiece: "##ing" stays as is

    def token_labels(self, ids: Sequence[int]) -> list[str]:
        """`token_label` for each id, for attention maps and token tables.

        Byte-level BPE may split one character's UTF-8 bytes over several tokens: the token that
        completes the character is labelled with it ("caf\\xc3", "\\xa9" -> "caf", "é"), and a
        token holding only the first bytes of a character shows them as \\xNN.
        """
        if self.kind != "bpe":
            return [self.token_label(i) for i in ids]
        labels = []
        pending = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        for i in ids:
            if int(i) < len(SPECIAL_TOKENS):
                pending.reset()
                labels.append(self.id_to_token(i))
                continue
            raw = bytes(_BYTE_DECODER.get(ch, ord("?")) for ch in self.id_to_token(i))
            text = pending.decode(raw) or raw.decode("utf-8", errors="backslashreplace")
            labels.append(_readable(text))
        return labels

    def oov_rate(self, texts: Iterable[str]) -> float:
        """Fraction of tokens that are <unk> (0.0 when the texts hold no tokens)."""
        total = unknown = 0
        for ids in self.encode_batch(list(texts)):
            total += len(ids)
            unknown += sum(1 for i in ids if i == UNK_ID)
        return unknown / total if total else 0.0

    # -- persistence --------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FILE_FORMAT,
                "format_version": FILE_FORMAT_VERSION,
                "config": self.config.to_dict(),
                "huggingface": json.loads(self._hf.to_str()),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"not a TextGen tokenizer file: invalid JSON ({exc}).") from None
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise ConfigError(
                f"not a TextGen tokenizer file: expected \"format\": \"{FILE_FORMAT}\"."
            )
        if data.get("format_version") != FILE_FORMAT_VERSION:
            raise ConfigError(
                f"unsupported tokenizer file version {data.get('format_version')!r}; this "
                f"version of TextGen reads version {FILE_FORMAT_VERSION}."
            )
        config = TokenizerConfig.from_dict(data.get("config"))
        hf_data = data.get("huggingface")
        if not isinstance(hf_data, dict):
            raise ConfigError("not a TextGen tokenizer file: the \"huggingface\" object is missing.")
        try:
            hf = HFTokenizer.from_str(json.dumps(hf_data))
        except Exception as exc:  # HF raises plain Exception for a malformed tokenizer
            raise ConfigError(f"not a TextGen tokenizer file: {exc}") from None
        return cls(hf, config)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            raise ConfigError(f"not a TextGen tokenizer file: {path} is not UTF-8 text.") from None
        return cls.from_json(text)


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> Tokenizer:
    """Learn a vocabulary of at most `config.vocab_size` tokens (special tokens included).

    Raises CorpusError when the texts hold no characters, ConfigError when byte-level BPE is
    asked for fewer than 260 tokens.
    """
    hf, trainer = _build_hf(config)
    seen = 0

    def normalized() -> Iterator[str]:
        nonlocal seen
        for text in texts:
            text = normalize(text)
            if text:
                seen += 1
                yield text

    hf.train_from_iterator(normalized(), trainer=trainer)
    if not seen:
        raise CorpusError("cannot train a tokenizer on empty text: the corpus has no characters.")
    return Tokenizer(_without_added_tokens(hf), config)
