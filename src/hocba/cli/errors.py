"""Errors a user can act on: one line saying what went wrong and what to do, no traceback."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from hocba.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
stderr = Console(stderr=True)


class UserError(Exception):
    """Raised by commands with a message that already tells the user what to do."""


def missing_topic(topic: str, bootstrap: str, check: str) -> UserError:
    """The broker answers for a missing topic as for an empty one: lag 0, no dead letters.
    A command that would report that must refuse instead, naming the setting to check."""
    return UserError(f"topic {topic} does not exist on {bootstrap}: check {check}")


def friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into `error: …` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except typer.Exit:  # click's Exit is a RuntimeError: let deliberate exit codes through
            raise
        except (UserError, OSError, ValueError, TimeoutError, RuntimeError) as exc:
            stderr.print(f"[bold red]error:[/] {describe(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def describe(exc: Exception) -> str:
    """One line; for invalid settings, the `HOCBA_*` variable to fix and why (never its value,
    which may be a secret), instead of pydantic's multi-line report on field names."""
    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError  # only on an error

    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError):
        where = ", ".join(f"{h}:{p}" for h, p in re.findall(r"\('([^']+)', (\d+)", str(exc)))
        return (
            f"cannot reach Kafka{' at ' + where if where else ''}: is the broker up, and "
            "HOCBA_KAFKA_BOOTSTRAP right?"
        )
    if not isinstance(exc, ValidationError):
        return str(exc) or type(exc).__name__
    env = exc.title == Settings.__name__
    return "; ".join(
        f"{_location(e['loc'], env)}: {e['msg']}" for e in exc.errors(include_url=False)
    )


def _location(loc: tuple[int | str, ...], env: bool) -> str:
    if env:
        return f"{Settings.model_config.get('env_prefix', '')}{str(loc[0]).upper()}"
    return ".".join(map(str, loc))
