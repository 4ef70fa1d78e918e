"""Read CSV, TSV and Parquet files into (row number, record) pairs, and any data file by its extension.

CSV/TSV cells stay text (a label "01" is not the number 1); Parquet keeps its types, and integer
labels stored with Hugging Face ClassLabel names come back as those names.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from backend.data.errors import DataError
from backend.data.readers import Progress, Records, decode, read_json_records, read_text_lines

JSON_EXT = {".json", ".jsonl", ".ndjson"}
TABLE_EXT = {".csv", ".tsv", ".parquet"}
TEXT_EXT = {".txt"}
DATA_EXT = JSON_EXT | TABLE_EXT | TEXT_EXT
# Files that travel with downloaded datasets but hold no rows (Hugging Face save_to_disk / hub metadata).
METADATA = {"dataset_infos.json", "dataset_dict.json", "state.json", "dataset_info.json"}


def is_data_file(path: Path) -> bool:
    """A file of rows by its extension, not a dataset's metadata."""
    return path.suffix.lower() in DATA_EXT and path.name not in METADATA


def read_records(
    path: Path, max_row_chars: int, progress: Progress | None = None, invalid: list[str] | None = None
) -> Records:
    """Every row of one data file, chosen by its extension. With `invalid` (skip_invalid), a JSON Lines
    line that does not parse is left out and listed there instead of stopping the import."""
    ext = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: the file is empty; it needs at least one example")
    if ext in JSON_EXT:
        return read_json_records(path, max_row_chars, progress, invalid)
    if ext in (".csv", ".tsv"):
        return read_csv(path, max_row_chars)
    if ext == ".parquet":
        return read_parquet(path)
    if ext in TEXT_EXT:
        return read_text_lines(path, max_row_chars, invalid)
    raise DataError(
        f"{path.name}: '{ext or 'no extension'}' is not a dataset file type; use .json, .jsonl, .csv, .tsv, "
        ".parquet, .txt, or a .zip of them (or of images)"
    )


def read_csv(path: Path, max_row_chars: int) -> Records:
    text = decode(path)
    if not text.strip():
        raise DataError(f"{path.name}: the file is empty; it needs a header row and at least one row")
    tsv = path.suffix.lower() == ".tsv"
    delimiter = "\t" if tsv else _sniff_delimiter(text)
    csv.field_size_limit(max_row_chars)
    # TSV exports (GLUE and most corpora) do not quote: a cell starting with " is text, as the HF loaders read it
    quoting = csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True, quoting=quoting)
    try:
        header = next(reader)
    except csv.Error as e:
        raise DataError(f"{path.name} line 1: the header row is not valid CSV ({e})") from None
    header = [h.strip() for h in header]
    _check_header(path.name, header)
    return _csv_rows(path.name, reader, header)


def _csv_rows(name: str, reader: Any, header: list[str]) -> Records:
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DataError(
                f"{name} line {reader.line_num}: not valid CSV ({e}); check the quotes on that line"
            ) from None
        if not any(c.strip() for c in cells):
            continue
        row += 1
        if len(cells) != len(header):
            raise DataError(
                f"{name} row {row} (line {reader.line_num}): {len(cells)} fields but the header has {len(header)}; "
                "quote cells that contain the delimiter"
            )
        yield row, dict(zip(header, cells, strict=True))
    if row == 0:
        raise DataError(f"{name}: the file has a header but no rows")


def _sniff_delimiter(text: str) -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample.split("\n", 20)[0] if "\n" in sample else sample, ",;\t|").delimiter
    except csv.Error:
        return ","


def _check_header(name: str, header: list[str]) -> None:
    if not any(header):
        raise DataError(f"{name} line 1: the header row is empty; the first line must name the columns")
    blank = [i + 1 for i, h in enumerate(header) if not h]
    if blank:
        raise DataError(f"{name} line 1: column {blank[0]} has no name; give every column a header")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"{name} line 1: column '{dupes[0]}' appears twice in the header; rename one")


def read_parquet(path: Path) -> Records:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path.name}: not a readable Parquet file ({e}); export it again") from None
    names = _class_label_names(parquet.schema_arrow.metadata or {})
    if parquet.metadata.num_rows == 0:
        raise DataError(f"{path.name}: the Parquet file has no rows")
    return _parquet_rows(parquet, names)


def _parquet_rows(parquet: Any, names: dict[str, list[str]]) -> Records:
    row = 0
    for batch in parquet.iter_batches(batch_size=10_000):
        for record in batch.to_pylist():
            row += 1
            for column, labels in names.items():
                value = record.get(column)
                if isinstance(value, int) and 0 <= value < len(labels):
                    record[column] = labels[value]
            yield row, record


def _class_label_names(metadata: dict[bytes, bytes]) -> dict[str, list[str]]:
    """Hugging Face writes ClassLabel names into the Parquet schema metadata; use them for integer labels."""
    try:
        info = json.loads(metadata.get(b"huggingface", b"{}"))
        features = info.get("info", {}).get("features", {})
        return {k: v["names"] for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "ClassLabel"}
    except (ValueError, AttributeError, KeyError, TypeError):
        return {}
