"""The root error class: every error a user can see says where it comes from and what to do."""

from __future__ import annotations


class MamoriError(Exception):
    """An error a user can act on: a message, where it happened (``path:line`` or a field) and a hint."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} (hint: {self.hint})" if self.hint else text


class RuleError(MamoriError):
    """A Sigma rule that cannot be loaded or compiled; ``where`` names the rule file."""


class InputError(MamoriError):
    """An input (log file, stream, request) that cannot be read; ``where`` names the file and offset."""
