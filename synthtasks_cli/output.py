"""How results are shown: rich tables for people, JSON (`--json`) for scripts.

In JSON mode stdout carries exactly one JSON document per command (the response
message as proto3 JSON with the proto's field names) and notes go to stderr, so
`synthtasks … --json | jq` always works."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def enum_label(value: int, enum: Any, prefix: str) -> str:
    """`VALID` for VALIDATION_STATE_VALID: the prefix repeats what the column says."""
    try:
        name = enum.Name(value)
    except ValueError:
        return str(value)
    label = name.removeprefix(prefix)
    return "-" if label == "UNSPECIFIED" else label


def when(timestamp: Timestamp) -> str:
    if not timestamp.seconds and not timestamp.nanos:
        return ""
    moment = timestamp.ToDatetime(tzinfo=dt.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def seconds(duration: Duration) -> str:
    if not duration.seconds and not duration.nanos:
        return ""
    value = duration.ToTimedelta().total_seconds()
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


# Rich assumes 80 columns when stdout is not a terminal; tables piped into files, grep
# or CI logs read better unwrapped. COLUMNS, when set, still wins.
PIPE_WIDTH = 160


def _pipe_width(stream: TextIO) -> int | None:
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if interactive or os.environ.get("COLUMNS"):
        return None
    return PIPE_WIDTH


class Output:
    def __init__(self, *, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stdout = stdout or sys.stdout
        self.console = Console(file=self._stdout, highlight=False, soft_wrap=False, width=_pipe_width(self._stdout))
        self.err = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)

    def result(self, document: Message | dict | list, render: Callable[[Console], None]) -> None:
        """Print `document` as JSON in JSON mode, else whatever `render` draws."""
        if self.json_mode:
            data = to_dict(document) if isinstance(document, Message) else document
            self._stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            self._stdout.flush()
        else:
            render(self.console)

    def note(self, text: str) -> None:
        """A line for people (stdout, or stderr in JSON mode so stdout stays parseable)."""
        (self.err if self.json_mode else self.console).print(text, markup=False, soft_wrap=True)

    def markup(self, text: str) -> None:
        """Like `note`, with rich markup (only for fixed strings: values may contain brackets)."""
        (self.err if self.json_mode else self.console).print(text, soft_wrap=True)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", show_lines=False)
    for index, column in enumerate(columns):
        # The first column is the id people copy into the next command: never wrapped.
        grid.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        # Text, not str: a generated text such as "[note]" must not be read as rich markup.
        grid.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    return grid


def details(pairs: Iterable[tuple[str, Any]], *, title: str | None = None) -> Table:
    """A two-column table for one resource; empty values are left out."""
    grid = Table(title=title, title_justify="left", show_header=False)
    grid.add_column("field", style="bold")
    grid.add_column("value", overflow="fold")
    for key, value in pairs:
        if value not in (None, "", [], ()):
            grid.add_row(key, value if isinstance(value, Text) else Text(str(value)))
    return grid


def printing(renderable: Any) -> Callable[[Console], None]:
    """A `render` for `Output.result` that prints one table or text."""
    return lambda console: console.print(renderable)
