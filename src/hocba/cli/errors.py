"""Errors a user can act on: one line saying what went wrong and what to do, no traceback."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")
stderr = Console(stderr=True)


class UserError(Exception):
    """Raised by commands with a message that already tells the user what to do."""


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into `error: …` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:  # click's Exit is a RuntimeError: let deliberate exit codes through
            raise
        except (UserError, OSError, ValueError, TimeoutError, RuntimeError) as exc:
            stderr.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper
