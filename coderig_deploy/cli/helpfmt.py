"""Help labels people can read: `HOST`, `hosts...`, `--tags <str>`, never typer's `<list[str]>`."""

from __future__ import annotations

import typer.core

_option_label = typer.core.TyperOption.display_type_rich


def _argument_label(self: typer.core.TyperArgument, ctx: object) -> str | None:
    """An argument's label: its metavar (HOST) or `hosts...` alone, not the Python type."""
    if self.metavar or self.nargs != 1:
        return None
    return self.display_type(ctx)  # type: ignore[arg-type]


def _repeatable_option_label(self: typer.core.TyperOption, ctx: object) -> str | None:
    """A repeatable option's label is its element's (`--tags <str>`), not `<list[str]>`."""
    label = _option_label(self, ctx)  # type: ignore[arg-type]
    if label and label.startswith("<list[") and label.endswith("]>"):
        return "<" + label[len("<list["):-2] + ">"
    return label


def install() -> None:
    """typer derives labels from annotations in one place each; replace those two, once."""
    typer.core.TyperArgument.display_type_rich = _argument_label  # type: ignore[method-assign]
    typer.core.TyperOption.display_type_rich = _repeatable_option_label  # type: ignore[method-assign]
