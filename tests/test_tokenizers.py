"""Tokenizers: training, exact round trips, fixed special ids, persistence."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from textgen.core.errors import ConfigError, CorpusError
from textgen.core.text import normalize
from textgen.data.config import TokenizerConfig
from textgen.data.tokenizers import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer, train_tokenizer

KINDS = ("char", "word", "bpe", "wordpiece")

MULTILINGUAL = [
    "Hello, world! How are you today?",
    "Emoji: 😀👍🏽 and a family 👨‍👩‍👧 emoji.",
    "中文测试：你好，世界。日本語のテキスト。",
    "Café crème, naïve façade, Ångström.",
    "مرحبا بالعالم، كيف حالك؟",
    "שלום עולם, מה שלומך?",
    "Tabs\tand  double spaces\nand a newline.",
]
CORPUS = MULTILINGUAL * 3 + [
    "The cat sat on the mat.",
    "The dog sat on the log!",
    "Hello, world! Hello again, world.",
]


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Tokenizer]:
    return {kind: train_tokenizer(CORPUS, TokenizerConfig(kind=kind, vocab_size=400)) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_give_identical_encodings(kind, tokenizers, tmp_path):
    tokenizer = tokenizers[kind]
    path = tmp_path / "tok" / "source.json"
    tokenizer.save(path)
    loaded = Tokenizer.load(path)
    from_text = Tokenizer.from_json(tokenizer.to_json())
    assert loaded.config == tokenizer.config and loaded.kind == kind
    assert loaded.vocab_size == tokenizer.vocab_size
    for text in CORPUS + ["unseen words zebra 🦓"]:
        assert loaded.encode(text) == tokenizer.encode(text) == from_text.encode(text)
    assert not list(path.parent.glob(".*tmp*"))  # the atomic write left no temporary file


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("text", MULTILINGUAL)
def test_char_and_bpe_round_trip_exactly(kind, text, tokenizers):
    tokenizer = tokenizers[kind]
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert UNK_ID not in tokenizer.encode(text)


def test_bpe_round_trips_text_never_seen_in_training(tokenizers):
    text = "Ελληνικά, Ελλάδα; русский текст 🦓🐙 ∑∫ ﷽ \u200b zero-width"
    assert tokenizers["bpe"].decode(tokenizers["bpe"].encode(text)) == text


def test_word_round_trips_in_vocabulary_text_with_punctuation(tokenizers):
    tokenizer = tokenizers["word"]
    for text in ["Hello, world!", "The cat sat on the mat.", "Hello, world! Hello again, world.",
                 "Tabs\tand  double spaces\nand a newline."]:
        ids = tokenizer.encode(text)
        assert UNK_ID not in ids
        assert tokenizer.decode(ids) == text
    assert tokenizer.token_labels(tokenizer.encode("Hello, world!")) == ["▁Hello", ",", "▁world", "!"]


def test_wordpiece_decodes_words_but_not_exact_spacing(tokenizers):
    tokenizer = tokenizers["wordpiece"]
    assert tokenizer.decode(tokenizer.encode("Hello, world!")) == "Hello, world!"
    assert tokenizer.decode(tokenizer.encode("Tabs\tand  double")) == "Tabs and double"


@pytest.mark.parametrize("kind", KINDS)
def test_vocabulary_cap_is_honoured(kind):
    cap = 270 if kind == "bpe" else 12
    tokenizer = train_tokenizer(CORPUS, TokenizerConfig(kind=kind, vocab_size=cap))
    assert tokenizer.vocab_size == cap  # the corpus has more than enough tokens to fill it


def test_byte_level_bpe_refuses_a_vocabulary_smaller_than_its_alphabet():
    with pytest.raises(ConfigError, match="at least 260"):
        train_tokenizer(CORPUS, TokenizerConfig(kind="bpe", vocab_size=100))


@pytest.mark.parametrize("kind", KINDS)
def test_special_token_ids_are_fixed(kind, tokenizers):
    tokenizer = tokenizers[kind]
    assert SPECIAL_TOKENS == ("<pad>", "<unk>", "<s>", "</s>")
    assert [tokenizer.id_to_token(i) for i in range(4)] == list(SPECIAL_TOKENS)
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id) == (
        PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    ids = tokenizer.encode("Hello", add_bos=True, add_eos=True)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID and ids[1:-1] == tokenizer.encode("Hello")
    assert tokenizer.decode([BOS_ID, *ids[1:-1], EOS_ID, PAD_ID, PAD_ID]) == "Hello"


@pytest.mark.parametrize("kind", KINDS)
def test_special_token_text_in_input_is_plain_text(kind, tokenizers):
    tokenizer = tokenizers[kind]
    ids = tokenizer.encode("a </s> <s> <pad>")
    assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)


def test_decode_keeps_unk_visible_and_refuses_unknown_ids(tokenizers):
    tokenizer = tokenizers["word"]
    ids = tokenizer.encode("Hello zebra")
    assert ids[-1] == UNK_ID
    assert tokenizer.decode(ids) == "Hello <unk>"
    assert tokenizer.decode([BOS_ID, *ids], skip_special_tokens=False) == "<s> Hello <unk>"
    assert tokenizer.decode_batch([ids, [UNK_ID, *ids]]) == ["Hello <unk>", "<unk> Hello <unk>"]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocab_size])


def test_oov_rate(tokenizers):
    assert tokenizers["word"].oov_rate(["zebra giraffe"]) == 1.0
    assert 0.0 < tokenizers["word"].oov_rate(["Hello zebra"]) < 1.0
    assert tokenizers["word"].oov_rate(["Hello, world!"]) == 0.0
    assert tokenizers["bpe"].oov_rate(["zebra giraffe 🦓"]) == 0.0
    assert tokenizers["char"].oov_rate([]) == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_composed_and_decomposed_accents_encode_the_same(kind, tokenizers):
    composed = "Café crème naïve"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    tokenizer = tokenizers[kind]
    assert tokenizer.encode(decomposed) == tokenizer.encode(composed)
    assert tokenizer.encode_batch([decomposed, composed]) == [tokenizer.encode(composed)] * 2


def test_encode_batch_matches_encode(tokenizers):
    for tokenizer in tokenizers.values():
        assert tokenizer.encode_batch(CORPUS, add_eos=True) == [
            tokenizer.encode(t, add_eos=True) for t in CORPUS]
        assert tokenizer.decode_batch(tokenizer.encode_batch(CORPUS[:3])) == [
            tokenizer.decode(tokenizer.encode(t)) for t in CORPUS[:3]]
    assert tokenizers["char"].encode_batch([]) == []


def test_char_encode_gives_the_ids_of_the_hf_pipeline(tokenizers):
    """The char tokenizer encodes with a dictionary lookup, not the HF pipeline; both must agree,
    on text the vocabulary lacks as well (<unk>), decomposed accents, astral and joined emoji,
    control and separator characters, and special-token spellings."""
    tokenizer = tokenizers["char"]
    texts = [*CORPUS, "Cafe\u0301 unseen: ЖЖ ∑ 🦜 \u200d\u2028 \r\n <s></s><pad> \x00\x1b end", "", "\n\n"]
    for text in texts:
        expected = tokenizer.hf_tokenizer.encode(normalize(text), add_special_tokens=False).ids
        assert tokenizer.encode(text) == expected, text
    assert UNK_ID in tokenizer.encode(texts[len(CORPUS)])
    lowercasing = train_tokenizer(CORPUS, TokenizerConfig(kind="char", lowercase=True))
    assert lowercasing.encode("HELLO ÅNGSTRÖM") == lowercasing.hf_tokenizer.encode(
        normalize("HELLO ÅNGSTRÖM"), add_special_tokens=False).ids


def test_token_labels_are_readable(tokenizers):
    bpe = tokenizers["bpe"]
    labels = bpe.token_labels(bpe.encode("Hello world, ¿café?\n"))
    # Each character is shown once, on the token that completes it; lone leading bytes as \xNN.
    assert re.sub(r"\\x[0-9a-f]{2}", "", "".join(labels)) == "Hello▁world,▁¿café?\\n"
    assert not any("Ġ" in label or "Ċ" in label or "Ã" in label for label in labels)
    # A token holding part of a character's UTF-8 bytes shows those bytes, never raises.
    emoji = bpe.encode("😀")
    assert len(emoji) > 1, "the small vocabulary splits the emoji's four bytes"
    assert bpe.token_labels(emoji)[-1] == "😀"
    assert bpe.token_label(emoji[-1]).startswith("\\x")  # alone, a partial token shows its bytes
    assert bpe.token_label(bpe.token_to_id("ð")) == "\\xf0"
    char = tokenizers["char"]
    assert char.token_labels(char.encode("a b\n")) == ["a", "▁", "b", "\\n"]
    word = tokenizers["word"]
    assert word.token_labels(word.encode("Tabs\tand")) == ["▁Tabs", "\\t", "and"]
    assert word.token_labels([BOS_ID, UNK_ID, EOS_ID]) == ["<s>", "<unk>", "</s>"]


def test_lowercase_normaliser():
    tokenizer = train_tokenizer(CORPUS, TokenizerConfig(kind="word", vocab_size=200, lowercase=True))
    assert tokenizer.encode("HELLO, World!") == tokenizer.encode("hello, world!")
    assert tokenizer.decode(tokenizer.encode("HELLO, World!")) == "hello, world!"


def test_min_frequency_leaves_rare_words_out():
    texts = ["common common common rare"]
    tokenizer = train_tokenizer(texts, TokenizerConfig(kind="word", vocab_size=100, min_frequency=2))
    assert tokenizer.encode("common rare")[-1] == UNK_ID
    assert UNK_ID not in tokenizer.encode("common common")


def test_empty_corpus_is_refused():
    with pytest.raises(CorpusError):
        train_tokenizer(["", ""], TokenizerConfig(kind="char"))


def test_loading_a_file_that_is_not_ours_raises_config_error(tokenizers, tmp_path):
    hf_only = tokenizers["word"].hf_tokenizer.to_str()
    bad_ids = json.loads(tokenizers["word"].to_json())
    vocab = bad_ids["huggingface"]["model"]["vocab"]
    vocab["<pad>"], vocab["<unk>"] = vocab["<unk>"], vocab["<pad>"]
    bad_config = json.loads(tokenizers["word"].to_json())
    bad_config["config"]["kind"] = "sentencepiece"
    for text, message in [
        ("not json {", "invalid JSON"),
        ("[1, 2]", "not a TextGen tokenizer"),
        (hf_only, "not a TextGen tokenizer"),
        (json.dumps(bad_ids), "special token"),
        (json.dumps(bad_config), "kind"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            Tokenizer.load(path)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError):
        Tokenizer.load(tmp_path / "binary.json")


def test_normalisation_is_the_shared_rule(tokenizers):
    # U+2028 is an in-line separator: textgen.core.text.normalize turns it into a space.
    tokenizer = tokenizers["char"]
    assert tokenizer.encode("a\u2028b") == tokenizer.encode("a b")
    assert tokenizer.decode(tokenizer.encode("a\u2028b")) == normalize("a\u2028b")


def test_tokenizers_module_does_not_import_tensorflow():
    code = "import sys, textgen.data.tokenizers; sys.exit('tensorflow' in sys.modules or 'streamlit' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo, check=False).returncode == 0
