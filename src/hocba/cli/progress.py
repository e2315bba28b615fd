"""The one progress bar for "landing N messages", shared by the demo and the benchmark."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def landing_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("landing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
