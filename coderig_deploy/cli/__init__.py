"""The command line: parses arguments, calls one stage, prints through `output`.

Stages never import this package; they raise `CoderigError` subclasses, which
`main` turns into one clear line and an exit code (2 bad input, 1 a host failed).
Set CODERIG_DEBUG=1 to see the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from coderig_deploy.cli.output import err_console
from coderig_deploy.errors import CoderigError

app = typer.Typer(
    name="coderig-deploy",
    help="Provision GPU workstations for local coding LLMs and prove they work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per command or command group; each registers itself on `app`.
_COMMAND_MODULES = ("plan", "profiles", "bench", "verify", "report", "sandbox", "render", "apply",
                    "bundle")
for _name in _COMMAND_MODULES:
    importlib.import_module(f"coderig_deploy.cli.{_name}")


def main() -> None:
    """Console-script entry point."""
    try:
        result = app(standalone_mode=False)
    except CoderigError as exc:
        if os.environ.get("CODERIG_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
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
            err_console.print(f"error: {exc}")
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(result if isinstance(result, int) else 0)
