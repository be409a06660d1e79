"""Error types: bad data (naming the file, the record and the field), env protocol misuse,
missing optional packages and bad reset options."""

from __future__ import annotations

from gymnasium.error import DependencyNotInstalled, ResetNeeded

__all__ = ["DataError", "EnvProtocolError", "MissingDependency", "ResetOptionError"]


class DataError(ValueError):
    """A data file (or one record of it) can't be read as the format it claims to be.

    The message always names the file, and the record (index or id) and field when known, so a
    user can find the bad line without a debugger.
    """

    def __init__(self, path: object, message: str, *, record: object = None, field: str | None = None):
        self.path, self.record, self.field, self.detail = str(path), record, field, message
        where = self.path
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class EnvProtocolError(ResetNeeded, RuntimeError):
    """An env was used out of order: ``step()`` before ``reset()`` or after the episode ended.

    Gymnasium's ``ResetNeeded`` (so ``gymnasium.error.Error`` handlers see it), and a
    ``RuntimeError`` as the envs raised before."""

    @classmethod
    def step_without_episode(cls, env: object) -> EnvProtocolError:
        """The one message for ``step()`` with no running episode."""
        return cls(f"{type(env).__name__}: step() needs a running episode: call reset() first "
                   "(before the first step, and after an episode ends)")


class MissingDependency(DependencyNotInstalled, ImportError):
    """An optional package an env needs (alfworld, webshop's engine, appium) is not installed.

    Gymnasium's ``DependencyNotInstalled``, and an ``ImportError`` as the envs raised before.
    The message says how to install it."""


class ResetOptionError(ValueError, IndexError):
    """A ``reset(options=...)`` key is unknown or its value is out of range.

    A ``ValueError``; also an ``IndexError``, what the index checks of some envs raised before."""
