"""Reading a customer table (CSV or Parquet) into canonical identifier records.

Every row is accounted for: a row with at least one usable identifier becomes a
record (its unusable identifiers are counted per kind), a row with none is rejected and
counted under the reason of its first unusable identifier (``"email:missing_at"``) or
``"missing"`` when all its identifier cells are empty. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import compress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from keynode.errors import InputError
from keynode.identity.bulk import bulk_canonical
from keynode.identity.kinds import InvalidIdentifier, KeyKind, parse_kind
from keynode.identity.profiles import Profile
from keynode.identity.reading import read_arrow

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


@dataclasses.dataclass
class _Column:
    """One identifier column, normalised: keys (None where unusable) and what went wrong."""

    keys: list[bytes | None]
    failures: dict[int, str]  # row index -> "kind:reason", invalid values only
    missing: int
    unsure: pa.Array  # true where the bulk path left the row to the per-value rules


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
    table = read_arrow(path, list(kinds.values()), extras, encoding)
    normalised = {
        kind: _normalise_column(table.column(name).combine_chunks(), profile, kind)
        for kind, name in kinds.items()
    }
    records, row_numbers, rejected = _assemble(list(normalised.values()), table.num_rows)
    accepted = pa.array(row_numbers, type=pa.int64())
    return NormalisedTable(
        path=path,
        profile_id=profile.profile_id,
        columns={kind.value: name for kind, name in kinds.items()},
        records=records,
        row_numbers=row_numbers,
        extra={
            name: table.column(name).take(pc.subtract(accepted, 1)).to_pylist() for name in extras
        },
        total_rows=table.num_rows,
        rejected_rows=sum(rejected.values()),
        rejected_by_reason=dict(rejected),
        invalid_keys_by_kind={k.value: len(c.failures) for k, c in normalised.items()},
        missing_keys_by_kind={k.value: c.missing for k, c in normalised.items()},
    )


def _normalise_column(values: pa.Array, profile: Profile, kind: KeyKind) -> _Column:
    """Normalise one column: in bulk where possible, the rest value by value."""
    fast = bulk_canonical(profile, kind, values)
    unsure = pc.is_null(fast)
    blank = pc.fill_null(pc.equal(values, ""), True)  # empty or null: missing for sure
    pending = pc.indices_nonzero(pc.and_(unsure, pc.invert(blank)))
    keys: list[bytes | None] = fast.to_pylist()
    normalise = profile.normaliser(kind)
    failures: dict[int, str] = {}
    missing = pc.sum(blank).as_py() or 0
    for index, raw in zip(pending.to_pylist(), values.take(pending).to_pylist(), strict=True):
        if raw.isspace():
            missing += 1
            continue
        try:
            keys[index] = normalise(raw)
        except InvalidIdentifier as exc:
            failures[index] = f"{kind.value}:{exc.reason}"
    return _Column(keys, failures, missing, unsure)


def _assemble(
    columns: list[_Column], total: int
) -> tuple[list[tuple[bytes, ...]], list[int], Counter[str]]:
    """Rows to records (keys in column order) and rejected rows to reason counts.

    A record's keys are distinct without deduplication: each kind has one column and the
    kind prefixes its canonical bytes. Only rows some column was unsure about are looked
    at one by one.
    """
    records: list[tuple[bytes, ...]] = list(zip(*(c.keys for c in columns), strict=True))
    unsure = columns[0].unsure
    for column in columns[1:]:
        unsure = pc.or_(unsure, column.unsure)
    keep = bytearray(b"\x01") * total
    rejected: Counter[str] = Counter()
    for index in pc.indices_nonzero(unsure).to_pylist():
        present = tuple(filter(None, records[index]))  # keys are never empty bytes
        if present:
            records[index] = present
            continue
        keep[index] = 0
        reasons = (c.failures[index] for c in columns if index in c.failures)
        rejected[next(reasons, MISSING)] += 1
    if rejected:
        records = list(compress(records, keep))
    return records, list(compress(range(1, total + 1), keep)), rejected
