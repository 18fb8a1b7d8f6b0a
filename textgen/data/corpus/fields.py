"""Which CSV columns or JSONL keys hold the source and the target, when the config does not say."""

from __future__ import annotations

import re
from typing import Sequence

from textgen.core.errors import CorpusError
from textgen.data.config import CorpusConfig

# Checked in order; the first pair present wins. instruction/... before input/output because
# instruction-tuning files (Alpaca) have an often-empty "input" next to "instruction".
_KNOWN_PAIRS = (
    ("source", "target"), ("src", "tgt"), ("src", "trg"), ("source_text", "target_text"),
    ("instruction", "output"), ("instruction", "response"),
    ("input", "output"), ("inputs", "targets"), ("input", "target"), ("inputs", "outputs"),
    ("question", "answer"), ("prompt", "completion"), ("prompt", "response"), ("query", "response"),
    ("context", "response"), ("text", "summary"), ("document", "summary"), ("article", "highlights"),
    ("article", "summary"), ("dialogue", "summary"), ("x", "y"),
)


_ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz "
    "ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia ie ig ii ik io "
    "is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn "
    "mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se "
    "sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo "
    "wa wo xh yi yo za zh zu".split()
)


_ISO_639_3_COMMON = frozenset(
    "eng fra fre deu ger spa ita por nld dut rus zho chi jpn kor ara hin tur pol swe dan nor fin ces cze ell gre "
    "heb hun ron rum ukr vie tha ind msa may fas per urd ben tam tel mar guj kan mal swa yor ibo hau zul xho amh "
    "som cat eus baq glg est lav lit slk slo slv hrv srp bul mkd bos sqi alb isl ice gle cym wel bre fil tgl khm "
    "lao mya bur sin nep pan".split()
)


_LANGUAGE_CODE = re.compile(r"([a-z]{2,3})([-_][a-z]{2,4})?")


_NOT_LANGUAGES = frozenset({"id", "no", "to", "is", "or", "key", "idx", "row", "num", "tag", "pos"})


def known_pair(first: str, second: str) -> bool:
    return (first.lower(), second.lower()) in _KNOWN_PAIRS


def _is_language_code(name: str) -> bool:
    match = _LANGUAGE_CODE.fullmatch(name.lower())
    if not match or name.lower() in _NOT_LANGUAGES:
        return False
    return match.group(1) in _ISO_639_1 or match.group(1) in _ISO_639_3_COMMON


def choose_fields(
    names: Sequence[str], config: CorpusConfig, kind: str, all_names: Sequence[str] | None = None
) -> tuple[str, str, str]:
    """(source name, target name, explanation). kind is "column" (CSV) or "key" (JSONL)."""
    all_names = list(all_names) if all_names is not None else list(names)
    listing = ", ".join(repr(n) for n in all_names[:30])
    if len(all_names) > 30:
        listing += f" and {len(all_names) - 30} more"

    def find(wanted: str, option: str) -> str:
        if wanted in all_names:
            return wanted
        folded = [n for n in all_names if n.casefold() == wanted.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise CorpusError(f"{option}={wanted!r} is not a {kind} of this file; the {kind}s are {listing}. "
                          f"Set {option} to one of them.")

    source = find(config.source_field, "source_field") if config.source_field is not None else None
    target = find(config.target_field, "target_field") if config.target_field is not None else None
    if source is not None and target is not None:
        if source == target:
            raise CorpusError(f"source_field and target_field are both {source!r}; choose two different {kind}s.")
        return source, target, f"source={source!r}, target={target!r} (as configured)"

    lowered = {n.lower(): n for n in reversed(names)}  # first spelling wins
    for source_name, target_name in _KNOWN_PAIRS:
        src, tgt = lowered.get(source_name), lowered.get(target_name)
        if source is not None and source.lower() == source_name and tgt is not None:
            return source, tgt, f"source={source!r} (as configured), target={tgt!r} (its usual partner)"
        if target is not None and target.lower() == target_name and src is not None:
            return src, target, f"source={src!r} (usual partner), target={target!r} (as configured)"
        if source is None and target is None and src is not None and tgt is not None:
            return src, tgt, f"source={src!r}, target={tgt!r} (well-known names)"
    if source is None and target is None:
        languages = [n for n in names if _is_language_code(n)]
        if len(languages) == 2:
            return languages[0], languages[1], (f"source={languages[0]!r}, target={languages[1]!r} "
                                                "(the two language-code names, in file order)")
    if len(names) == 2:
        if source is None and target is None:
            return names[0], names[1], f"source={names[0]!r}, target={names[1]!r} (the only two {kind}s, in order)"
        if source is not None and source in names:
            other = names[1] if names[0] == source else names[0]
            return source, other, f"source={source!r} (as configured), target={other!r} (the other {kind})"
        if target is not None and target in names:
            other = names[1] if names[0] == target else names[0]
            return other, target, f"source={other!r} (the other {kind}), target={target!r} (as configured)"
    unnamed = [opt for opt, val in (("source_field", source), ("target_field", target)) if val is None]
    others = [n for n in all_names if n not in (source, target)]
    example = ", ".join(f"{opt}={name!r}" for opt, name in zip(unnamed, others))
    raise CorpusError(
        f"cannot tell which {kind}s hold the source and the target: the {kind}s are {listing}. "
        f"Name them with {' and '.join(unnamed)}" + (f" (e.g. {example})." if len(others) >= len(unnamed) else ".")
    )
