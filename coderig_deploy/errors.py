"""The one exception hierarchy. The CLI turns these into a message and an exit code."""

from __future__ import annotations


class CoderigError(Exception):
    """Base class of every error coderig reports to a user."""

    exit_code = 1


class UserInputError(CoderigError):
    """Bad input: an unknown name, an invalid file, a wrong option (exit 2)."""

    exit_code = 2


class UnknownNameError(UserInputError):
    """A profile, GPU, model or quantization name that the catalog does not know."""


class ProfileError(UserInputError):
    """A profile file that cannot be read or does not validate."""


class EnvironmentProblem(CoderigError):
    """The controller lacks something it needs: root, a tool, a running sandbox (exit 2)."""

    exit_code = 2


class RunFailed(CoderigError):
    """A host failed a step or a check (exit 1)."""

    exit_code = 1


class BenchError(RunFailed):
    """The smoke benchmark could not measure a host: server down, model missing, bad reply."""
