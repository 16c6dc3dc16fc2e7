"""The command line: parses arguments, calls one stage, prints through `output`.

Stages never import this package; they raise `CoderigError` subclasses, which
`main` turns into one clear line and an exit code (2 bad input, 1 a host failed).
Set CODERIG_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys
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
    sys.exit(result if isinstance(result, int) else 0)


def _print_error(message: str) -> None:
    # Messages carry users' and hosts' text (`budget[/x]`, `[a-z0-9]`): never rich markup.
    err_console.print(plain(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
