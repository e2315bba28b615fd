"""Tables printed with every word whole, however narrow the terminal or pipe.

Users copy fingerprints, Department codes and reason codes out of tables into the next
command. Rich fits a table to the console (80 columns in a pipe) by cutting cells to `…`,
and a cut identifier is refused by that command, or worse, matches nothing.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

UNBOUNDED = 100_000  # columns: wide enough to measure any word without cutting it


def print_whole(*tables: Table) -> None:
    """Print on stdout, wrapping cells only between words, never cutting one.

    Each column is given its longest word as minimum width, which rich keeps however it
    squeezes the table. A table that does not fit then runs past the console's width
    instead of being cropped: a terminal wraps those lines, a pipe or file gets them whole.
    """
    console = Console()
    unbounded = console.options.update_width(UNBOUNDED)
    for table in tables:
        for column in table.columns:
            column.min_width = max(
                Measurement.get(console, unbounded, cell).minimum
                for cell in (column.header, *column.cells)
            )
    console.print(*tables, crop=False)
