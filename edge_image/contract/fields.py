"""Typed reads of a parsed YAML or JSON mapping, with one-line errors naming the file and the field.

The one validator of hand-edited and hand-off documents: the edge service's ``config.yml``
(:mod:`edge_image.config`), ``selection.json`` and the published ``latest.json``
(``training_scripts``). Errors read ``FILE: a.b[2].c: problem``.

>>> f = Fields("s.json", "", {"selected": {"iteration": "7"}}, hint="was it written by select?")
>>> try:
...     f.required_child("selected").value("iteration", int, "an integer")
... except UserError as exc:
...     print(exc)
s.json: selected.iteration: must be an integer, got '7'
>>> try:
...     f.value("cfg", str, "a string")
... except UserError as exc:
...     print(exc)
s.json: cfg: is required (was it written by select?)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from edge_image.contract.errors import UserError

T = TypeVar("T")


class Fields:
    """Typed access to one mapping of a YAML or JSON document, naming ``FILE: a.b.c`` in errors.

    ``where`` is the file (as the error should name it), ``prefix`` the mapping's place in the
    document (``""`` for the top level), ``hint`` what to add to a *missing* field's error
    (e.g. which command writes the file). Every getter marks its key used, so
    :meth:`finish` can refuse unknown fields.
    """

    def __init__(self, where: str, prefix: str, data: object, *, hint: str = "") -> None:
        self.where = where
        self.prefix = prefix
        self.hint = hint
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", f"must be a mapping, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def error(self, key: str, problem: str) -> UserError:
        return UserError(f"{self.where}: {self.name(key) or '(top level)'}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> object:
        self.used.add(key)
        return self.data.get(key)

    def child(self, key: str) -> Fields:
        """The mapping at ``key`` (missing: empty)."""
        return Fields(self.where, self.name(key), self.raw(key), hint=self.hint)

    def required_child(self, key: str) -> Fields:
        """The mapping at ``key``, which must be there."""
        if not self.has(key):
            raise self._missing(key)
        return self.child(key)

    def _missing(self, key: str) -> UserError:
        return self.error(key, f"is required{f' ({self.hint})' if self.hint else ''}")

    def value(self, key: str, kinds: type | tuple[type, ...], what: str) -> Any:
        """``data[key]``, required, an instance of ``kinds`` (a bool is never an int or float)."""
        return self._get(
            key, None, lambda v: v if isinstance(v, kinds) and not isinstance(v, bool) else None, what
        )

    def optional(self, key: str, kinds: type | tuple[type, ...], what: str) -> Any:
        """Like :meth:`value`, but a missing (or null) field is None."""
        return self.value(key, kinds, what) if self.has(key) else self.raw(key)

    def text(self, key: str) -> str:
        """A required non-empty string."""
        return self._get(key, None, lambda v: v if isinstance(v, str) and v else None, "a non-empty string")

    def strings(self, key: str) -> list[str]:
        """A required list of non-empty strings."""
        value = self.raw(key)
        if value is None:
            raise self._missing(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, f"must be a list of non-empty strings, got {value!r}")
        return list(value)

    def mappings(self, key: str) -> list[Fields]:
        """A required list of mappings, each as :class:`Fields` named ``key[i]``."""
        value = self.raw(key)
        if value is None:
            raise self._missing(key)
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {type(value).__name__}")
        return [
            Fields(self.where, f"{self.name(key)}[{i}]", item, hint=self.hint) for i, item in enumerate(value)
        ]

    def _get(self, key: str, default: T | None, check: Callable[[object], T | None], what: str) -> T:
        value = self.raw(key)
        if value is None:
            if default is None:
                raise self._missing(key)
            return default
        result = check(value)
        if result is None:
            raise self.error(key, f"must be {what}, got {value!r}")
        return result

    def string(self, key: str, default: str | None = None) -> str:
        return self._get(key, default, lambda v: v if isinstance(v, str) else None, "a string")

    def boolean(self, key: str, default: bool | None = None) -> bool:
        return self._get(key, default, lambda v: v if isinstance(v, bool) else None, "true or false")

    def integer(self, key: str, default: int | None = None, *, low: int = 0, high: int = 2**31) -> int:
        def check(v: object) -> int | None:
            return v if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high else None

        return self._get(key, default, check, f"an integer in {low}..{high}")

    def number(self, key: str, default: float | None = None, *, low: float = 0.0, high: float = 1e9) -> float:
        def check(v: object) -> float | None:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and low <= v <= high
            return float(v) if ok else None  # type: ignore[arg-type]

        return self._get(key, default, check, f"a number in {low:g}..{high:g}")

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.raw(key)
        if value is None and default is not None:
            return default
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def path(self, key: str, base: Path, default: Path | None = None) -> Path:
        text = self.string(key, None if default is None else str(default))
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else (base / path)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown field")
