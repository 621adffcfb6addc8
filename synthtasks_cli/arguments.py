"""Building blocks shared by the command modules' parsers: the leaf-parser factory and
argument types that fail with a clear message (`--var drug=a,b`, positive numbers)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

GLOBAL_OPTIONS_NOTE = (
    "The global options (--gateway, --token, --json, --timeout, --tls-ca, --tls-cert, --tls-key, "
    "--state-dir) work here too; see `synthtasks --help`."
)


class Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)


def leaf(
    commands: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser, **kwargs: Any
) -> argparse.ArgumentParser:
    """A sub-command parser that also takes the global options."""
    kwargs.setdefault("epilog", GLOBAL_OPTIONS_NOTE)
    return commands.add_parser(name, parents=[common], formatter_class=Formatter, allow_abbrev=False, **kwargs)


def group(
    commands: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser, **kwargs: Any
) -> argparse._SubParsersAction:
    """A command group (`providers`, `texts`, …) whose actions are leaves."""
    parser = leaf(commands, name, common, **kwargs)
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def variable(text: str) -> tuple[str, list[str]]:
    """`drug=aspirin,ibuprofen` -> ("drug", ["aspirin", "ibuprofen"])."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME=VALUE1,VALUE2,...")
    items = [value.strip() for value in values.split(",") if value.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{text!r} gives no values for {name}")
    return name, items


def entity_label(text: str) -> tuple[str, str]:
    """`DRUG=a medication` -> ("DRUG", "a medication"); `DRUG` -> ("DRUG", "").
    The gateway checks the name (it names the field when it refuses it)."""
    name, _, description = text.partition("=")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME or NAME=DESCRIPTION")
    return name.strip(), description.strip()


def binding(text: str) -> tuple[str, str]:
    """`drug=DRUG` -> ("drug", "DRUG")."""
    variable_name, sep, label = text.partition("=")
    if not sep or not variable_name.strip() or not label.strip():
        raise argparse.ArgumentTypeError(f"{text!r} must look like VARIABLE=LABEL")
    return variable_name.strip(), label.strip()


def variable_file(text: str) -> tuple[str, list[str]]:
    """`drug=drugs.txt` -> ("drug", one value per non-empty line of drugs.txt)."""
    name, sep, path = text.partition("=")
    name = name.strip()
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME=PATH")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    items = [line.strip() for line in lines if line.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{path} has no values (one per line) for {name}")
    return name, items
