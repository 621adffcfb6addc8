"""Streaming encoders for ExportStagedTexts: CSV, JSON and JSON Lines, in chunks of
about `CHUNK_SIZE` bytes, so that memory stays flat whatever the number of texts.

Texts are exported in write order (oldest first), like a log.

CSV
- UTF-8 with a byte order mark: Excel needs the BOM to read UTF-8 (without it, emoji,
  Arabic or Hebrew turn into mojibake); pandas reads it with
  `pd.read_csv(path, encoding="utf-8-sig")`, Python with `open(path, encoding="utf-8-sig")`.
- RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled,
  records end with CRLF. Line breaks inside a text stay inside its quoted field.
- Formula injection: a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`,
  tab or carriage return as a formula. Every cell holding model or reviewer text
  (text, title, original_text, model, finish_reason) that starts with one of them
  gets a leading apostrophe `'` (OWASP's advice), which spreadsheets hide and programs
  must strip: `"-5 degrees"` is exported as `"'-5 degrees"`. Cells we write ourselves
  (names, state, numbers, the JSON of tags and variables, hashes, times) cannot start a formula:
  a negative seed such as -3 is a number, not a formula.
- Columns: name, text, title, tags (a JSON array of strings, like variables: tags may
  hold any separator, so joining them could not be read back), state, duplicate
  (true/false), original_text, generation_job, provider, model,
  temperature, seed (empty when none), variables (a JSON object), prompt_hash,
  prompt_tokens, completion_tokens, finish_reason, create_time (RFC 3339, UTC).

JSON / JSONL
- The annotation platform's import shape: `{"text": …, "title": …, "tags": […],
  "meta": {lineage…}}`; JSON is one array, JSONL one object per line. UTF-8, no BOM,
  nothing escaped beyond what JSON requires.

Title: the first non-blank line of the text, stripped, cut to 80 characters. It is
derived from the text alone (not from the job), so it changes with the reviewer's
edits and reads well in the platform's task list.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.task_store.records import StagedText
from services.vocabulary.names import job_name, staged_text_name

CHUNK_SIZE = 64 * 1024
TITLE_LENGTH = 80

CSV_COLUMNS = (
    "name",
    "text",
    "title",
    "tags",
    "state",
    "duplicate",
    "original_text",
    "generation_job",
    "provider",
    "model",
    "temperature",
    "seed",
    "variables",
    "prompt_hash",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "create_time",
)
_FORMULA_STARTS = frozenset("=+-@\t\r")
_BOM = "\ufeff"
_CSV_BATCH = 16


class ExportFormat(enum.Enum):
    CSV = ("text/csv; charset=utf-8", "csv")
    JSON = ("application/json", "json")
    JSONL = ("application/x-ndjson", "jsonl")

    def __init__(self, content_type: str, extension: str) -> None:
        self.content_type = content_type
        self.extension = extension


@dataclass(frozen=True)
class Chunk:
    data: bytes
    # Set on the first chunk only.
    content_type: str = ""
    file_name: str = ""


def export_chunks(
    texts: Iterable[StagedText], export_format: ExportFormat, *, project: str, now: datetime
) -> Iterator[Chunk]:
    """The file, in chunks; the first (sent before any row is read, so the download
    starts at once) names the content type and file name."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    encoder = {ExportFormat.CSV: _csv, ExportFormat.JSON: _json, ExportFormat.JSONL: _jsonl}[export_format]
    parts = encoder(texts)
    yield Chunk(
        next(parts).encode("utf-8"),
        content_type=export_format.content_type,
        file_name=f"{project}-staged-texts-{stamp}.{export_format.extension}",
    )
    buffered: list[str] = []
    size = 0
    for part in parts:
        buffered.append(part)
        size += len(part)  # characters, a lower bound of bytes: chunks end up 64-256 KiB
        if size >= CHUNK_SIZE:
            yield Chunk("".join(buffered).encode("utf-8"))
            buffered, size = [], 0
    if buffered:
        yield Chunk("".join(buffered).encode("utf-8"))


def title_of(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:TITLE_LENGTH]
    return ""


def neutralize_formula(cell: str) -> str:
    return "'" + cell if cell[:1] in _FORMULA_STARTS else cell


def _csv(texts: Iterable[StagedText]) -> Iterator[str]:
    """The header first (with the BOM), then the records, `_CSV_BATCH` at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def drain() -> str:
        written = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return written

    writer.writerow(CSV_COLUMNS)
    yield _BOM + drain()
    cell = neutralize_formula
    rows: list[tuple[str, ...]] = []
    for text in texts:
        body = cell(text.text)
        # Names, states, the provider name and the hash are ours and start with a
        # letter or digit: only cells holding reviewer or model text need the guard.
        rows.append(
            (
                staged_text_name(text.project, text.id),
                body,
                cell(title_of(text.text)),
                _dumps(list(text.tags)),
                text.state.value,
                "true" if text.duplicate else "false",
                body if text.original_text == text.text else cell(text.original_text),
                job_name(text.project, text.job_id),
                text.provider,
                cell(text.model),
                repr(text.temperature),
                "" if text.seed is None else str(text.seed),
                _dumps(text.variables),
                text.prompt_hash,
                str(text.prompt_tokens),
                str(text.completion_tokens),
                cell(text.finish_reason),
                _timestamp(text.create_time),
            )
        )
        if len(rows) >= _CSV_BATCH:
            writer.writerows(rows)
            rows.clear()
            yield drain()
    writer.writerows(rows)
    yield drain()


def _json(texts: Iterable[StagedText]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for text in texts:
        yield separator + _dumps(_platform_object(text))
        separator = ",\n"
    yield "\n]\n"


def _jsonl(texts: Iterable[StagedText]) -> Iterator[str]:
    yield ""
    for text in texts:
        yield _dumps(_platform_object(text)) + "\n"


def _platform_object(text: StagedText) -> dict[str, Any]:
    return {
        "text": text.text,
        "title": title_of(text.text),
        "tags": list(text.tags),
        "meta": {
            "name": staged_text_name(text.project, text.id),
            "state": text.state.value,
            "duplicate": text.duplicate,
            "original_text": text.original_text,
            "generation_job": job_name(text.project, text.job_id),
            "slot": text.slot,
            "provider": text.provider,
            "model": text.model,
            "temperature": text.temperature,
            "seed": text.seed,
            "variables": text.variables,
            "prompt_hash": text.prompt_hash,
            "prompt_tokens": text.prompt_tokens,
            "completion_tokens": text.completion_tokens,
            "finish_reason": text.finish_reason,
            "latency_ms": round(text.latency_us / 1000, 3),
            "generate_time": _timestamp(text.generate_time) if text.generate_time else None,
            "create_time": _timestamp(text.create_time),
        },
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
