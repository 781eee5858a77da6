"""Located input problems, collected and raised together.

Validation is a list of small checks. Each check appends a :class:`Problem` (file, row, column, what was
found, what was expected, how to fix) to a :class:`Problems` collector; the loader raises one
:class:`InputError` listing them all, so a user fixes every mistake in one pass instead of one per run.
Row numbers are the ones a spreadsheet shows: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located as precisely as the input allows."""

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    found: str | None = None
    expected: str | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        text = f"{where}: {self.message}"
        if self.found is not None:
            text += f"; found {self.found!r}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text


class SymbiosisError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(SymbiosisError):
    """The input has one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the input:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


def _quoted(found: object, limit: int = 120) -> str:
    """What a message may quote of the input: control characters escaped, never more than ``limit`` characters
    (a misread file must not be echoed into a terminal or a log)."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(found))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Problems:
    """Collector of problems; ``raise_if_any`` ends a validation pass."""

    items: list[Problem] = field(default_factory=list)

    def add(
        self,
        file: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        found: object = None,
        expected: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.items.append(
            Problem(
                file=file,
                message=message,
                row=row,
                column=column,
                found=None if found is None else _quoted(found),
                expected=expected,
                fix=fix,
            )
        )

    def extend(self, other: Problems) -> None:
        self.items.extend(other.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InputError(self.items)
