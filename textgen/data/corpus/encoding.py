"""From raw bytes to text: binary files refused before decoding, byte-order marks removed, strict
UTF-8 with the place of the first bad byte."""

from __future__ import annotations

import re

from textgen.core.errors import CorpusError

_BINARY_SAMPLE_BYTES = 64 * 1024


_MAX_CONTROL_SHARE = 0.10


_HEX_PREVIEW_BYTES = 4


# (offset, pattern, kind, name). kind "archive" gets the decompress hint.
_MAGIC: tuple[tuple[int, re.Pattern[bytes], str, str], ...] = tuple(
    (offset, re.compile(pattern, re.DOTALL), kind, name)
    for offset, pattern, kind, name in (
        (0, rb"\x1f\x8b", "archive", "gzip"),
        (0, rb"PK(\x03\x04|\x05\x06|\x07\x08)", "archive", "zip"),
        (0, rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", "archive", "bzip2"),
        (0, rb"\xfd7zXZ\x00", "archive", "xz"),
        (0, rb"\x28\xb5\x2f\xfd", "archive", "zstd"),
        (0, rb"7z\xbc\xaf\x27\x1c", "archive", "7z"),
        (0, rb"Rar!\x1a\x07", "archive", "rar"),
        (257, rb"ustar", "archive", "tar"),
        (0, rb"\x04\x22\x4d\x18", "archive", "lz4"),
        (0, rb"\x1f\x9d", "archive", "compress (.Z)"),
        (0, rb"\x89PNG\r\n\x1a\n", "binary", "PNG image"),
        (0, rb"\xff\xd8\xff", "binary", "JPEG image"),
        (0, rb"GIF8[79]a", "binary", "GIF image"),
        (0, rb"II\x2a\x00|MM\x00\x2a", "binary", "TIFF image"),
        (0, rb"RIFF....(WEBP|WAVE|AVI )", "binary", "RIFF media file (WebP/WAV/AVI)"),
        (4, rb"ftyp", "binary", "MP4/MOV/HEIC media file"),
        (0, rb"ID3[\x02-\x04]\x00|OggS|fLaC|\x1a\x45\xdf\xa3", "binary", "audio or video file"),
        (0, rb"%PDF-", "binary", "PDF document"),
        (0, rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "binary", "legacy Microsoft Office document (.doc/.xls)"),
        (0, rb"\x7fELF", "binary", "ELF executable"),
        (0, rb"\xcf\xfa\xed\xfe|\xce\xfa\xed\xfe|\xfe\xed\xfa[\xce\xcf]|\xca\xfe\xba\xbe", "binary",
         "Mach-O executable or Java class file"),
        (0, rb"\x00asm", "binary", "WebAssembly module"),
        (0, rb"SQLite format 3\x00", "binary", "SQLite database"),
        (0, rb"\x89HDF\r\n\x1a\n", "binary", "HDF5 file (e.g. Keras .h5 weights)"),
        (0, rb"\x93NUMPY", "binary", "NumPy .npy array"),
        (0, rb"\x80[\x02-\x05]", "binary", "Python pickle"),
    )
)


_BOMS = (  # UTF-32 before UTF-16: the UTF-32 LE mark starts with the UTF-16 LE one.
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\x0b\x0c\x1b") + b"\x7f"


_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def check_not_binary(data: bytes) -> None:
    """Refuse archives and binary files by content, before decoding (which would give a misleading
    "not UTF-8" error for them)."""
    for offset, pattern, kind, name in _MAGIC:
        if pattern.match(data, offset):
            if kind == "archive":
                extra = (" (.xlsx, .docx, .odt and .epub files are zip archives too: export the sheet as CSV "
                         "or the document as plain text)") if name == "zip" else ""
                raise CorpusError(
                    f"this is a {name} compressed or archive file{extra}, not text; decompress it and "
                    "upload the text file."
                )
            raise CorpusError(
                f"this is a binary file ({name}), not text; upload a UTF-8 text, TSV, CSV or JSONL file."
            )
    if any(data.startswith(bom) for bom, name in _BOMS if name != "utf-8-sig"):
        return  # UTF-16/32 text is full of NUL bytes; checked after decoding instead.
    base = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    sample = data[base:base + _BINARY_SAMPLE_BYTES]
    nul = sample.find(b"\x00")
    if nul >= 0:
        nul += base
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if even + odd > len(sample) // 4 and max(even, odd) > 0.9 * (even + odd):
            endian = "le" if odd > even else "be"
            raise CorpusError(
                f"this is not UTF-8 text: it contains NUL bytes (first at byte offset {nul}) and looks like "
                f"UTF-16 ({endian.upper()}) without a byte-order mark. Re-save it as UTF-8, e.g. "
                f"`iconv -f utf-16{endian} -t utf-8 IN > OUT`."
            )
        raise CorpusError(
            f"this is a binary file, not text: it contains NUL bytes (first at byte offset {nul}). "
            "Upload a UTF-8 text, TSV, CSV or JSONL file."
        )
    controls = sum(sample.count(b) for b in _CONTROL_BYTES)
    if controls > _MAX_CONTROL_SHARE * len(sample):
        raise CorpusError(
            f"this looks like a binary file, not text: {controls / len(sample):.0%} of the first "
            f"{len(sample):,} bytes are control characters. Upload a UTF-8 text, TSV, CSV or JSONL file."
        )


def decode(data: bytes) -> tuple[str, str]:
    """Strictly decode; returns (text without BOM, encoding name)."""
    encoding, codec, bom_length = "utf-8", "utf-8", 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, bom_length = name, len(bom)
            codec = "utf-8" if name == "utf-8-sig" else name
            break
    body = data[bom_length:]
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as error:
        raise CorpusError(_decode_error_message(body, error, codec, bom_length)) from None
    if bom_length and codec != "utf-8":
        sample = text[:_BINARY_SAMPLE_BYTES]
        if "\x00" in sample or len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_SHARE * len(sample):
            raise CorpusError(
                f"this looks like a binary file: it starts with a {encoding} byte-order mark but the text is "
                "mostly control characters. Upload a UTF-8 text, TSV, CSV or JSONL file."
            )
    return text, encoding


def _decode_error_message(body: bytes, error: UnicodeDecodeError, codec: str, bom_length: int) -> str:
    start = error.start
    prefix = body[:start].decode(codec, errors="replace")
    line = len(re.findall(r"\r\n|\r|\n", prefix)) + 1
    column = len(prefix) - max(prefix.rfind("\n"), prefix.rfind("\r")) if prefix else 1
    offset = start + bom_length
    shown = " ".join(f"0x{b:02X}" for b in body[start:start + max(1, min(error.end - start, _HEX_PREVIEW_BYTES))])
    where = f"byte offset {offset:,} (line {line}, column {column}): byte {shown}"
    if codec != "utf-8":
        return (f"the file starts with a {codec} byte-order mark but is not valid {codec} at {where} "
                f"({error.reason}). Re-save it as UTF-8.")
    # Control bytes were ruled out before decoding, so this is text in a legacy encoding. Mostly
    # non-ASCII bytes suggest a non-Latin script (Windows-1251, Shift-JIS, GBK...); a few suggest
    # accented Latin letters (Windows-1252/Latin-1), by far the most common case.
    sample = body[:_BINARY_SAMPLE_BYTES]
    high = sum(1 for b in sample if b >= 0x80)
    try:
        as_cp1252 = body[start:start + 1].decode("cp1252")
        body.decode("cp1252")
        latin = high <= 0.3 * len(sample)
    except UnicodeDecodeError:
        latin = False
    if not latin:
        hint = ("it is in a legacy encoding (perhaps Windows-1251, Shift-JIS or GBK); re-save it as UTF-8, e.g. "
                "`iconv -f ENCODING -t utf-8 IN > OUT` with the file's real encoding.")
    else:
        hint = (f"the file looks like Latin-1/Windows-1252 (that byte is {as_cp1252!r} there); re-save it as "
                "UTF-8, e.g. `iconv -f cp1252 -t utf-8 IN > OUT`.")
    return f"the file is not valid UTF-8 at {where}. Nothing was replaced: {hint}"
