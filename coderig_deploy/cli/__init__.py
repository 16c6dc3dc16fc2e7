"""The command line: parses arguments, calls one stage, prints through `output`.

Stages never import this package; they raise `CoderigError` subclasses, which
`main` turns into one clear line and an exit code (2 bad input, 1 a host failed).
An operating-system error nothing caught (a file the controller cannot read or
write, a full disk) is one line too (exit 2); any other exception is a bug: one
line that says so, and the traceback in a private file (exit 70).
Set CODERIG_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import traceback
from typing import Annotated

import typer

from coderig_deploy import __version__
from coderig_deploy.cli import helpfmt
from coderig_deploy.cli.output import err_console, plain
from coderig_deploy.errors import CoderigError

helpfmt.install()

app = typer.Typer(
    name="coderig-deploy",
    help="Provision GPU workstations for local coding LLMs and prove they work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: square brackets in help texts ([user@]host) are text, not rich markup.
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"coderig-deploy {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit",
                                          callback=_print_version, is_eager=True)] = False,
) -> None:
    """Global options only (--version); the app's help text is set on `app`."""


# One module per command or command group; each registers itself on `app`.
_COMMAND_MODULES = ("plan", "recommend", "profiles", "gpus", "bench", "verify", "report", "sandbox", "render",
                    "apply", "bundle", "validate", "probe", "detect", "editor_config")
for _name in _COMMAND_MODULES:
    importlib.import_module(f"coderig_deploy.cli.{_name}")


def main() -> None:
    """Console-script entry point."""
    try:
        result = app(standalone_mode=False)
    except CoderigError as exc:
        if os.environ.get("CODERIG_DEBUG"):
            raise
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option, bad value
        show = getattr(exc, "show", None)
        if show:
            show()
        else:
            _print_error(str(exc))
        sys.exit(getattr(exc, "exit_code", 2))
    except OSError as exc:  # the controller's own files and tools: permissions, a full disk, a missing directory
        if os.environ.get("CODERIG_DEBUG"):
            raise
        _print_error(os_error_text(exc))
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, reported as one
        if os.environ.get("CODERIG_DEBUG"):
            raise
        _print_error(f"internal error, a bug in coderig-deploy {__version__}: {type(exc).__name__}: {exc}. "
                     f"{_save_traceback()}")
        sys.exit(INTERNAL_ERROR)
    sys.exit(result if isinstance(result, int) else 0)


# sysexits.h's EX_SOFTWARE: neither the input nor the hosts, the program itself.
INTERNAL_ERROR = 70


def os_error_text(exc: OSError) -> str:
    """"/path: Permission denied" (both paths of a rename), or the error's own text without a path."""
    if not exc.strerror:
        return str(exc)
    paths = [os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {exc.strerror}" if paths else exc.strerror


def _save_traceback() -> str:
    """Write the current exception's traceback to a new file only this user can read; say where."""
    try:
        fd, path = tempfile.mkstemp(prefix="coderig-deploy-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"coderig-deploy {__version__}\n{' '.join(sys.argv)}\n\n{traceback.format_exc()}")
    except OSError:
        return "Run again with CODERIG_DEBUG=1 to see the traceback."
    return f"The traceback is in {path} (attach it to a bug report); CODERIG_DEBUG=1 prints it instead."


def _print_error(message: str) -> None:
    # Messages carry users' and hosts' text (`budget[/x]`, `[a-z0-9]`): never rich markup.
    err_console.print(plain(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
