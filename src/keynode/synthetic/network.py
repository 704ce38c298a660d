"""The demo network: a retailer's loyalty base and six partners, written as CSV/Parquet.

Every partner file mixes three kinds of rows: key-node members written cleanly but
messily (other case, blanks, any phone format), key-node members written with a
near-miss typo in every identifier (they must not match), and outsiders (people who
are not members; a few with junk identifiers that must be rejected). The generator
knows which partner rows share a usable identifier with the key node and reports
their number as ``expected_overlap``, so a matching run can be checked exactly.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from keynode.errors import InputError
from keynode.synthetic import people

DEFAULT_MEMBERS = 100_000
MAX_MEMBERS = 5_000_000
SEGMENTS = ("bronze", "silver", "gold", "platinum")
_SEGMENT_WEIGHTS = (0.5, 0.3, 0.15, 0.05)
_SEGMENT_SPEND = {"bronze": 120, "silver": 450, "gold": 1200, "platinum": 3500}
JUNK_EMAILS = ("n/a", "keine", "max.mustermann@", "@web.de", "kein mail@web.de", "-")
JUNK_PHONES = ("0000", "n/a", "123", "+49 151", "0151 1234567890123", "-")


@dataclasses.dataclass(frozen=True)
class PartnerSpec:
    """How one partner's customer file looks.

    ``size`` and ``overlap`` are relative: ``size`` rows per key-node member, ``overlap``
    the share of rows that are key-node members. ``fill`` gives, per identifier kind,
    the share of rows whose cell is filled; ``value_mean`` the mean of the value column.
    """

    name: str
    size: float
    overlap: float
    columns: dict[str, str]
    fill: dict[str, float]
    value_column: str
    value_mean: int
    near_miss: float = 0.02
    junk: float = 0.005

    def __post_init__(self) -> None:
        if not set(self.columns) - {"customer_id"}:
            raise InputError(f"partner {self.name}: outsiders need an email or phone column")


PARTNERS = (
    PartnerSpec("bank", 0.6, 0.30, {"email": "customer_email", "phone": "mobile_phone"},
                {"email": 0.9, "phone": 0.6}, "balance_eur", 8_000),
    PartnerSpec("insurer", 0.35, 0.22, {"email": "email"}, {"email": 1.0},
                "annual_premium_eur", 900),
    PartnerSpec("mobile_operator", 0.8, 0.45, {"phone": "msisdn", "email": "contact_email"},
                {"phone": 1.0, "email": 0.35}, "monthly_bill_eur", 35),
    PartnerSpec("travel_agency", 0.15, 0.12, {"email": "E-Mail"}, {"email": 1.0},
                "booking_value_eur", 1_800),
    PartnerSpec("fuel", 0.4, 0.55, {"customer_id": "loyalty_card", "email": "email"},
                {"customer_id": 0.7, "email": 0.5}, "litres_per_month", 90),
    PartnerSpec("media", 0.5, 0.08, {"email": "subscriber_email"}, {"email": 1.0},
                "minutes_per_month", 1_500),
)  # fmt: skip
KEY_NODE_COLUMNS = {"customer_id": "customer_id", "email": "email", "phone": "phone"}
_KEY_NODE_FILL = {"email": 0.85, "phone": 0.7}


@dataclasses.dataclass(frozen=True)
class PartyFile:
    """One party's generated file and what a matching run over it should find.

    ``expected_overlap`` counts the rows sharing a usable identifier with the key node
    (0 for the key node itself); ``junk_rows`` the rows with junk identifiers (rejected
    at a partner; at the key node the loyalty id keeps them).
    """

    name: str
    path: Path
    parquet_path: Path | None
    columns: dict[str, str]
    value_column: str
    rows: int
    expected_overlap: int
    near_miss_rows: tuple[int, ...]
    junk_rows: int


@dataclasses.dataclass(frozen=True)
class DemoNetwork:
    """The manifest of a generated network (also written as ``manifest.json``)."""

    directory: Path
    seed: int
    members: int
    key_node: PartyFile
    partners: tuple[PartyFile, ...]
    segment_column: str = "segment"


def generate_network(
    directory: str | Path,
    *,
    members: int = DEFAULT_MEMBERS,
    seed: int = 7,
    parquet: bool = False,
    partners: tuple[PartnerSpec, ...] = PARTNERS,
) -> DemoNetwork:
    """Write the key node's loyalty base and each partner's file into ``directory``.

    Deterministic in ``seed``; ``parquet`` also writes a ``.parquet`` copy of every file.
    """
    if not 1 <= members <= MAX_MEMBERS:
        raise InputError(f"members must be between 1 and {MAX_MEMBERS}, not {members}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    key_node, usable = _write_key_node(directory, members, rng, parquet)
    written = tuple(
        _write_partner(directory, spec, members, usable, rng, parquet) for spec in partners
    )
    network = DemoNetwork(directory, seed, members, key_node, written)
    _write_manifest(network)
    return network


def _write_key_node(
    directory: Path, members: int, rng: random.Random, parquet: bool
) -> tuple[PartyFile, dict[str, bytearray]]:
    """The loyalty base; returns, per kind, which members' identifiers are usable."""
    usable = {kind: bytearray(members) for kind in ("email", "phone")}
    ids, emails, phones, segments, spend = [], [], [], [], []
    junk_rows = 0
    segment_of = rng.choices(SEGMENTS, _SEGMENT_WEIGHTS, k=members)
    for person in range(members):
        ids.append(people.loyalty_id_of(person))
        email = phone = ""
        junk = rng.random() < 0.003
        if rng.random() < _KEY_NODE_FILL["email"]:
            if junk:
                email = rng.choice(JUNK_EMAILS)
            else:
                email = people.messy_email(people.email_of(person), rng)
                usable["email"][person] = 1
        if rng.random() < _KEY_NODE_FILL["phone"]:
            if junk:
                phone = rng.choice(JUNK_PHONES)
            else:
                phone = people.messy_phone(people.mobile_of(person), rng)
                usable["phone"][person] = 1
        junk_rows += junk and bool(email or phone)
        emails.append(email)
        phones.append(phone)
        segment = segment_of[person]
        segments.append(segment)
        spend.append(int(rng.expovariate(1 / _SEGMENT_SPEND[segment])))
    table = pa.table(
        {"customer_id": ids, "email": emails, "phone": phones, "segment": segments, "spend": spend}
    )
    csv_path, parquet_path = _write(directory / "key_node", table, parquet)
    party = PartyFile(
        "key_node",
        csv_path,
        parquet_path,
        dict(KEY_NODE_COLUMNS),
        "spend",
        members,
        0,
        (),
        junk_rows,
    )
    return party, usable


def _write_partner(
    directory: Path,
    spec: PartnerSpec,
    members: int,
    usable: dict[str, bytearray],
    rng: random.Random,
    parquet: bool,
) -> PartyFile:
    """One partner's file; counts the rows that share a usable identifier with the key node."""
    rows = max(1, round(spec.size * members))
    shared = min(members, round(rows * spec.overlap))
    people_in_file = rng.sample(range(members), shared) + rng.sample(
        range(members, 2 * members), rows - shared
    )
    rng.shuffle(people_in_file)
    cells: dict[str, list[str]] = {kind: [] for kind in spec.columns}
    values: list[int] = []
    expected = junk_rows = 0
    near_miss_rows: list[int] = []
    for row_number, person in enumerate(people_in_file, start=1):
        member = person < members
        near_miss = member and rng.random() < spec.near_miss
        junk = not member and rng.random() < spec.junk
        # Outsiders have no loyalty card; every row names at least one identifier.
        filled = [
            kind
            for kind in spec.columns
            if rng.random() < spec.fill[kind] and (member or kind != "customer_id")
        ] or [next(kind for kind in spec.columns if member or kind != "customer_id")]
        matches = False
        for kind in spec.columns:
            if kind not in filled:
                cells[kind].append("")
            elif junk:
                cells[kind].append(rng.choice(JUNK_PHONES if kind == "phone" else JUNK_EMAILS))
            else:
                cells[kind].append(_identifier(kind, person, near_miss, rng))
                if member and not near_miss:
                    matches = matches or kind == "customer_id" or bool(usable[kind][person])
        expected += matches
        junk_rows += junk
        if near_miss:
            near_miss_rows.append(row_number)
        values.append(int(rng.expovariate(1 / spec.value_mean)))
    table = pa.table({**{spec.columns[k]: v for k, v in cells.items()}, spec.value_column: values})
    csv_path, parquet_path = _write(directory / spec.name, table, parquet)
    return PartyFile(
        spec.name,
        csv_path,
        parquet_path,
        dict(spec.columns),
        spec.value_column,
        rows,
        expected,
        tuple(near_miss_rows),
        junk_rows,
    )


def _identifier(kind: str, person: int, near_miss: bool, rng: random.Random) -> str:
    """``person``'s identifier of ``kind`` as a partner holds it, typo'd for a near miss."""
    if kind == "email":
        email = people.email_of(person)
        return people.messy_email(people.email_typo(email, rng) if near_miss else email, rng)
    if kind == "phone":
        nsn = people.mobile_of(person)
        return people.messy_phone(people.digit_typo(nsn, rng, 3) if near_miss else nsn, rng)
    loyalty_id = people.loyalty_id_of(person)
    if near_miss:
        loyalty_id = people.digit_typo(loyalty_id, rng, 2)
    return people.messy_loyalty_id(loyalty_id, rng)


def _write(stem: Path, table: pa.Table, parquet: bool) -> tuple[Path, Path | None]:
    csv_path = stem.with_suffix(".csv")
    pacsv.write_csv(table, csv_path)
    if not parquet:
        return csv_path, None
    parquet_path = stem.with_suffix(".parquet")
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def _write_manifest(network: DemoNetwork) -> None:
    """``manifest.json``: paths, columns and expected counts (near-miss rows as a count)."""

    def party(p: PartyFile) -> dict[str, object]:
        return {
            "name": p.name,
            "path": p.path.name,
            "parquet_path": p.parquet_path.name if p.parquet_path else None,
            "columns": p.columns,
            "value_column": p.value_column,
            "rows": p.rows,
            "expected_overlap": p.expected_overlap,
            "near_miss_rows": len(p.near_miss_rows),
            "junk_rows": p.junk_rows,
        }

    manifest = {
        "seed": network.seed,
        "members": network.members,
        "segment_column": network.segment_column,
        "key_node": party(network.key_node),
        "partners": [party(p) for p in network.partners],
    }
    (network.directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
