"""``datastore import`` / ``export``: documents in and out of a collection, streamed in batches.

Input is JSON Lines (one object per line), a JSON array, or CSV (a header row; values typed like
URL parameters: numbers, true/false, null). Documents are read incrementally (JSON arrays with a
streaming parser) and written in batches of one transaction each, so memory does not grow with
the file. An invalid line is reported with its line number and either skipped
(``--on-error skip``) or ends the run before its batch is written (``abort``, the default).
Every record gets the checks a request body gets (nesting depth, numbers storable exactly, no
NUL character: ``jsonvalues.check_storable``), and the collection's schema when the blueprint
gives one.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from datastore.blueprint.schemas import CompiledSchema
from datastore.clock import utc_now
from datastore.config import Settings
from datastore.errors import BadRequest
from datastore.ids import generate_id, id_problem
from datastore.jsonvalues import check_storable
from datastore.storage.documents import DocumentStore
from datastore.storage.engine import Database
from datastore.storage.scan import scan_documents

BATCH = 1000


class TransferError(ValueError):
    """A problem that ends an import (with ``abort``) or a file that cannot be read."""


@dataclass
class Report:
    """What an import did."""

    imported: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)


def _decoded(line: int, raw: bytes, max_depth: int) -> Any:
    """The value of one record's JSON text, or a TransferError: not JSON, or not what a
    request body could hold (``jsonvalues.check_storable``, the checks bodies get)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return TransferError(f"line {line}: not valid JSON ({exc})")
    return _storable(line, value, max_depth, raw)


def _storable(line: int, value: Any, max_depth: int, raw: bytes | None) -> Any:
    """``value``, or a TransferError naming what ``check_storable`` refuses in it."""
    try:
        check_storable(value, max_depth, raw)
    except BadRequest as exc:
        reasons = "; ".join(f"{p.name} {p.reason}" for p in exc.invalid_params[:5])
        return TransferError(f"line {line}: {reasons}")
    return value


def _records_jsonl(stream: IO[bytes], max_depth: int) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        yield number, _decoded(number, line, max_depth)


def _records_array(reader: IO[str], max_depth: int) -> Iterator[tuple[int, Any]]:
    """Objects of a top-level JSON array, one at a time (a small incremental scanner)."""
    buffer = ""
    depth = 0
    in_string = escaped = started = False
    line = 1
    start_line = 1
    for chunk in iter(lambda: reader.read(65536), ""):
        for char in chunk:
            if char == "\n":
                line += 1
            if not started:
                if char == "[":
                    started = True
                elif not char.isspace():
                    raise TransferError(f"line {line}: expected a JSON array")
                continue
            if depth == 0 and not buffer:
                if char in ", \n\r\t":
                    continue
                if char == "]":
                    return
                start_line = line
            buffer += char
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth == 0:
                    raw = buffer.encode("utf-8", "surrogateescape")
                    yield start_line, _decoded(start_line, raw, max_depth)
                    buffer = ""
            elif depth == 0 and char in ",]":
                yield start_line, TransferError(f"line {start_line}: not a JSON object")
                buffer = ""
    if started:
        raise TransferError(f"line {line}: the JSON array is not closed")


_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _csv_value(text: str) -> Any:
    from datastore.query.mongo import url_value

    if text == "":
        return None
    if _INTEGER.fullmatch(text):
        return int(text)  # exactly: one wider than 64 bits is refused, not rounded
    return url_value(text)


def _records_csv(stream: IO[str], max_depth: int) -> Iterator[tuple[int, Any]]:
    reader = csv.DictReader(stream)
    for row in reader:
        line = reader.line_num
        cells = [*row.keys(), *(v for v in row.values() if isinstance(v, str))]
        if not all(_is_text(cell) for cell in cells if cell is not None):
            yield line, TransferError(f"line {line}: not UTF-8 text")
            continue
        record = {k: _csv_value(v) for k, v in row.items() if k is not None}
        yield line, _storable(line, record, max_depth, None)


def _is_text(cell: str) -> bool:
    """Whether a cell read with ``surrogateescape`` was UTF-8 (no escaped byte in it)."""
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def records(path: Path, max_depth: int = Settings.max_json_depth) -> Iterator[tuple[int, Any]]:
    """(line number, decoded document or TransferError) of each record of a file; a record
    that no request body could carry (``jsonvalues.check_storable``, nesting deeper than
    ``max_depth``) is a TransferError too."""
    if path.suffix.lower() == ".csv":
        with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as text:
            yield from _records_csv(text, max_depth)
        return
    with path.open("rb") as stream:
        head = stream.read(1)
        while head.isspace():
            head = stream.read(1)
    if head == b"[":
        with path.open("r", encoding="utf-8", errors="surrogateescape") as text:
            yield from _records_array(text, max_depth)
    else:
        with path.open("rb") as stream:
            yield from _records_jsonl(stream, max_depth)


def import_documents(
    db: Database,
    space: str,
    collection: str,
    path: Path,
    *,
    schema: CompiledSchema | None,
    id_property: str = "_id",
    on_error: str = "abort",
    progress: Callable[[int], None] | None = None,
    max_depth: int = Settings.max_json_depth,
) -> Report:
    """Import a file into a collection; raises TransferError when aborting.

    With ``abort`` the whole file is checked first (streaming), so a bad record stops the run
    before anything is written."""
    if on_error == "abort":
        for line, record in records(path, max_depth):
            problem = _problem(line, record, schema, id_property)
            if problem is not None:
                raise TransferError(problem)
    report = Report()
    store = DocumentStore()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        now = utc_now()
        with db.write() as conn:
            for item in batch:
                if store.insert(conn, space, collection, item["id"], item["body"], now) is None:
                    problem = f"line {item['line']}: the id {item['id']!r} already exists"
                    if on_error == "abort":
                        raise TransferError(problem)
                    report.problems.append(problem)
                    report.skipped += 1
                    report.imported -= 1
        batch.clear()

    for line, record in records(path, max_depth):
        problem = _problem(line, record, schema, id_property)
        if problem is not None:
            if on_error == "abort":
                raise TransferError(problem)
            report.problems.append(problem)
            report.skipped += 1
            continue
        body = dict(record)
        doc_id = body.pop(id_property, None) or generate_id()
        batch.append({"line": line, "id": str(doc_id), "body": body})
        report.imported += 1
        if len(batch) >= BATCH:
            flush()
            if progress is not None:
                progress(report.imported + report.skipped)
    flush()
    if progress is not None:
        progress(report.imported + report.skipped)
    return report


def _problem(line: int, record: Any, schema: CompiledSchema | None, id_property: str) -> str | None:
    if isinstance(record, TransferError):
        return str(record)
    if not isinstance(record, dict):
        return f"line {line}: not a JSON object"
    doc_id = record.get(id_property)
    if doc_id is not None and id_problem(doc_id) is not None:
        return f"line {line}: {id_property} {id_problem(doc_id)}"
    if schema is not None:
        body = {k: v for k, v in record.items() if k != id_property}
        errors = schema.errors(body)
        if errors:
            reasons = "; ".join(f"{e.name} {e.reason}" for e in errors[:5])
            return f"line {line}: {reasons}"
    return None


def export_documents(
    db: Database,
    space: str,
    collection: str,
    out: IO[bytes],
    *,
    as_array: bool,
    id_property: str = "_id",
) -> int:
    """Write a collection as JSON Lines (or a JSON array), in creation order; the count."""
    count = 0
    if as_array:
        out.write(b"[")
    stored = scan_documents(db, space=space, collection=collection, batch=BATCH, inherited=False)
    for batch in stored:
        for doc in batch:
            line = orjson.dumps({id_property: doc.doc_id, **doc.body})
            if as_array:
                out.write((b",\n" if count else b"\n") + line)
            else:
                out.write(line + b"\n")
            count += 1
    if as_array:
        out.write(b"\n]\n")
    return count
