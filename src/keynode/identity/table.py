"""Reading a customer table (CSV or Parquet) into canonical identifier records.

Every row is accounted for: a row with at least one usable identifier becomes a
record (its unusable identifiers are counted per kind), a row with none is rejected and
counted under the reason of its first unusable identifier (``"email:missing_at"``) or
``"missing"`` when all its identifier cells are empty. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from keynode.errors import InputError
from keynode.identity.kinds import InvalidIdentifier, KeyKind, parse_kind
from keynode.identity.profiles import Profile

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t", "|")
MISSING = "missing"


@dataclasses.dataclass
class NormalisedTable:
    """The canonical identifier records of one table, and an account of every row.

    ``records[i]`` holds the distinct canonical keys of source row ``row_numbers[i]``
    (1-based, counting data rows, so a CSV row ``n`` is on line ``n + 1``);
    ``extra[name][i]`` is that row's value of a requested extra column.
    """

    path: Path
    profile_id: str
    columns: dict[str, str]
    records: list[tuple[bytes, ...]]
    row_numbers: list[int]
    extra: dict[str, list[Any]]
    total_rows: int
    rejected_rows: int
    rejected_by_reason: dict[str, int]
    invalid_keys_by_kind: dict[str, int]
    missing_keys_by_kind: dict[str, int]

    @property
    def width(self) -> int:
        """The most keys a record can carry: the number of identifier columns."""
        return len(self.columns)

    def summary(self) -> dict[str, Any]:
        """Counts only (no identifiers), JSON-ready, for reports and logs."""
        return {
            "path": str(self.path),
            "profile_id": self.profile_id,
            "columns": dict(self.columns),
            "total_rows": self.total_rows,
            "accepted_rows": len(self.records),
            "rejected_rows": self.rejected_rows,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "invalid_keys_by_kind": dict(self.invalid_keys_by_kind),
            "missing_keys_by_kind": dict(self.missing_keys_by_kind),
        }


def read_table(
    path: str | Path,
    columns: Mapping[KeyKind | str, str],
    profile: Profile,
    extra_columns: Iterable[str] = (),
    *,
    encoding: str = "utf-8",
) -> NormalisedTable:
    """Read ``path`` and normalise its identifier ``columns`` (kind -> column name).

    CSV (optionally .gz/.bz2; delimiter sniffed among ``, ; TAB |``) or Parquet, chosen
    by extension. Any problem with the file or the column names is an InputError.
    """
    path = Path(path)
    kinds = {parse_kind(kind): name for kind, name in columns.items()}
    if not kinds:
        raise InputError("name at least one identifier column (email, phone or customer_id)")
    extras = list(dict.fromkeys(extra_columns))
    table = _read_arrow(path, list(kinds.values()), extras, encoding)
    keys, invalid, missing, reasons = _normalise_columns(table, kinds, profile)
    records, row_numbers, rejected = _assemble(keys, reasons)
    accepted = pa.array([n - 1 for n in row_numbers], type=pa.int64())
    return NormalisedTable(
        path=path,
        profile_id=profile.profile_id,
        columns={kind.value: name for kind, name in kinds.items()},
        records=records,
        row_numbers=row_numbers,
        extra={name: table.column(name).take(accepted).to_pylist() for name in extras},
        total_rows=table.num_rows,
        rejected_rows=sum(rejected.values()),
        rejected_by_reason=dict(rejected),
        invalid_keys_by_kind=invalid,
        missing_keys_by_kind=missing,
    )


def _read_arrow(path: Path, id_columns: list[str], extras: list[str], encoding: str) -> pa.Table:
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


def _normalise_columns(
    table: pa.Table, kinds: dict[KeyKind, str], profile: Profile
) -> tuple[list[list[bytes | None]], dict[str, int], dict[str, int], list[dict[int, str]]]:
    """Per column: canonical keys (None where unusable), counts, and per-row failure reasons."""
    keys, reasons = [], []
    invalid: dict[str, int] = {}
    missing: dict[str, int] = {}
    for kind, name in kinds.items():
        column_keys, failures, absent = _normalise_values(
            table.column(name).to_pylist(), profile.normaliser(kind), kind
        )
        keys.append(column_keys)
        reasons.append(failures)
        invalid[kind.value] = sum(1 for reason in failures.values() if reason != MISSING)
        missing[kind.value] = absent
    return keys, invalid, missing, reasons


def _normalise_values(
    values: list[str | None], normalise: Callable[[str], bytes], kind: KeyKind
) -> tuple[list[bytes | None], dict[int, str], int]:
    """Normalise one column; the hot loop, so it stays flat."""
    out: list[bytes | None] = [None] * len(values)
    failures: dict[int, str] = {}
    absent = 0
    for index, raw in enumerate(values):
        if not raw or raw.isspace():
            failures[index] = MISSING
            absent += 1
            continue
        try:
            out[index] = normalise(raw)
        except InvalidIdentifier as exc:
            failures[index] = f"{kind.value}:{exc.reason}"
    return out, failures, absent


def _assemble(
    keys: list[list[bytes | None]], reasons: list[dict[int, str]]
) -> tuple[list[tuple[bytes, ...]], list[int], Counter[str]]:
    """Rows to records and rejected rows to reason counts.

    A record's keys are distinct without deduplication: each kind has one column and the
    kind prefixes its canonical bytes.
    """
    records: list[tuple[bytes, ...]] = []
    row_numbers: list[int] = []
    rejected: Counter[str] = Counter()
    for index, row in enumerate(zip(*keys, strict=True)):
        present = row if None not in row else tuple(key for key in row if key is not None)
        if present:
            records.append(present)
            row_numbers.append(index + 1)
        else:
            row_reasons = [failures[index] for failures in reasons]
            rejected[next((r for r in row_reasons if r != MISSING), MISSING)] += 1
    return records, row_numbers, rejected
