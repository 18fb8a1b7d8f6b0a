"""The base of every configuration: frozen dataclasses that validate themselves and read from JSON
and from `key=value` text. Each package keeps its own config beside its code (data/config.py,
models/config.py, decoding/config.py, training/config.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, TypeVar

from textgen.core.errors import ConfigError

C = TypeVar("C")


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None) -> None:
    """Raise ConfigError unless low <= value <= high (either bound may be None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if value != value:  # NaN
        raise ConfigError(f"{name} must be a number, got NaN.")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        raise ConfigError(f"{name} must be {span}, got {value!r}.")


def check_choice(name: str, value: Any, choices: typing.Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """What a config field declares once (`setting`): read by validation, the CLI's `--set` help,
    `python -m textgen settings` and the app's form widgets (bounds and tooltips)."""

    name: str
    type: Any  # the resolved annotation: int, float, bool, str, str | None, ...
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def allowed(self) -> str:
        """The valid values in a few characters: "adam|adamw", "0..10000", "at least 1", ""."""
        def number(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:g}"

        if self.choices:
            return "|".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"{number(self.low)}..{number(self.high)}"
        if self.low is not None:
            return f"at least {number(self.low)}"
        if self.high is not None:
            return f"at most {number(self.high)}"
        return ""


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            choices: typing.Iterable[str] | None = None) -> Any:
    """A config field: its default, its help text, and its valid range (low..high, inclusive) or
    its choices, declared once as dataclass field metadata (see `FieldSpec`)."""
    return dataclasses.field(default=default, metadata={
        "help": " ".join(help.split()), "low": low, "high": high,
        "choices": tuple(choices) if choices is not None else None})


def _check_type(name: str, value: Any, hint: Any) -> None:
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}.")


class ConfigMixin:
    """Validation from field metadata, and to_dict / from_dict / with_overrides, for frozen
    dataclasses whose fields are declared with `setting`. A subclass with checks across fields
    defines `__post_init__`, calling `super().__post_init__()` first."""

    def __post_init__(self) -> None:
        self.check_fields()

    def check_fields(self) -> None:
        """Raise ConfigError naming the first field whose value is outside its declared range or
        choices, or not of its type."""
        for spec in self.field_specs():
            value = getattr(self, spec.name)
            if value is None and spec.default is None:
                continue
            if spec.choices is not None:
                check_choice(spec.name, value, spec.choices)
            if spec.low is not None or spec.high is not None:
                check_range(spec.name, value, spec.low, spec.high)
            _check_type(spec.name, value, spec.type)

    @classmethod
    def field_specs(cls) -> list[FieldSpec]:
        """Every field's declaration, in field order."""
        hints = typing.get_type_hints(cls)
        return [FieldSpec(f.name, hints[f.name], f.default, f.metadata.get("help", ""), f.metadata.get("low"),
                          f.metadata.get("high"), f.metadata.get("choices"))
                for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def field_spec(cls, name: str) -> FieldSpec:
        for spec in cls.field_specs():
            if spec.name == name:
                return spec
        raise ConfigError(f"{name!r} is not a {cls.__name__} field. Valid fields: {', '.join(cls.field_names())}.")

    @classmethod
    def parse_setting(cls, name: str, text: str) -> Any:
        """`text` (from the command line or a link) as a value of field `name`: of the field's
        type, within its range or choices. Raises ConfigError saying what was expected."""
        spec = cls.field_spec(name)
        value = _coerce(name, str(text).strip(), spec.type, from_text=True)
        if value is None:
            return value
        if spec.choices is not None:
            check_choice(name, value, spec.choices)
        if spec.low is not None or spec.high is not None:
            check_range(name, value, spec.low, spec.high)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {text!r}.")
        return value

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}.")
        unknown = sorted(set(data) - set(cls.field_names()))  # type: ignore[attr-defined]
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}. "
                f"Valid keys: {', '.join(cls.field_names())}."  # type: ignore[attr-defined]
            )
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(k, v, hints[k], from_text=False) for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        return cls.from_dict(json.loads(text))  # type: ignore[attr-defined]

    def with_overrides(self: C, overrides: dict[str, Any], *, from_text: bool = False) -> C:
        """A copy with some fields replaced. With from_text, values are strings ("key=value" from
        the CLI or a URL) parsed according to the field's type."""
        cls = type(self)
        names = cls.field_names()  # type: ignore[attr-defined]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown {cls.__name__} key(s): {', '.join(unknown)}. Valid keys: {', '.join(names)}."
            )
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(k, v, hints[k], from_text=from_text) for k, v in overrides.items()}
        return dataclasses.replace(self, **values)  # type: ignore[type-var]


def _coerce(name: str, value: Any, hint: Any, *, from_text: bool) -> Any:
    """Convert JSON / text values to the field's declared type, refusing what does not fit."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        non_none = [a for a in args if a is not type(None)]
        if value is None or (from_text and str(value).lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        return _coerce(name, value, non_none[0], from_text=from_text)
    if origin is tuple:
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}.")
        item = args[0] if args else str
        return tuple(_coerce(name, v, item, from_text=from_text) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if from_text and str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if from_text and str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}.")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be an integer, got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_text and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{name} must be an integer, got {value!r}.")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}.")
        if isinstance(value, (int, float)):
            return float(value)
        if from_text and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string, got {value!r}.")
    return value
