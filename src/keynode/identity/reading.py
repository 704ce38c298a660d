"""Reading a customer file (CSV or Parquet) into an Arrow table; every failure an InputError."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from keynode.errors import InputError

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t", "|")


def read_arrow(path: Path, id_columns: list[str], extras: list[str], encoding: str) -> pa.Table:
    """The wanted columns of ``path``, identifier columns as strings; errors as InputError."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    name = path.name.lower()
    wanted = list(dict.fromkeys([*id_columns, *extras]))
    try:
        if name.endswith(PARQUET_SUFFIXES):
            parquet = pq.ParquetFile(path)
            _check_columns(path, wanted, parquet.schema_arrow.names)
            table = parquet.read(columns=wanted)
        elif name.endswith(CSV_SUFFIXES):
            table = _read_csv(path, id_columns, wanted, encoding)
        else:
            known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
            raise InputError(f"unsupported file type: {path} (expected one of {known})")
        for column in id_columns:
            index = table.schema.get_field_index(column)
            if table.schema.field(index).type != pa.string():
                table = table.set_column(index, column, pc.cast(table.column(index), pa.string()))
    except (pa.ArrowException, OSError, UnicodeError) as exc:
        hint = f" (is it {encoding}? pass the file's encoding)" if "UTF8" in str(exc) else ""
        raise InputError(f"cannot read {path}: {exc}{hint}") from None
    return table


def _read_csv(path: Path, id_columns: list[str], wanted: list[str], encoding: str) -> pa.Table:
    read = pacsv.ReadOptions(encoding=encoding)
    parse = pacsv.ParseOptions(delimiter=_sniff_delimiter(path, encoding))
    with pacsv.open_csv(path, read_options=read, parse_options=parse) as reader:
        _check_columns(path, wanted, reader.schema.names)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(id_columns, pa.string()), include_columns=wanted
    )
    return pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)


def _sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter of the header line: whichever of ``, ; TAB |`` occurs most (``,`` on ties)."""
    with pa.input_stream(str(path), compression="detect") as stream:
        head = stream.read(65536).decode(encoding, errors="replace")
    header = head.splitlines()[0] if head else ""
    return max(_DELIMITERS, key=header.count)


def _check_columns(path: Path, wanted: list[str], available: list[str]) -> None:
    absent = [name for name in wanted if name not in available]
    if absent:
        raise InputError(
            f"{path}: no column {', '.join(map(repr, absent))}; "
            f"available columns: {', '.join(map(repr, available))}"
        )
