"""``keynode audit``: the auditor's commands, and the key node's audit service.

- ``verify``  — prove the log complete, append-only and policy-abiding (exit 1 if not);
- ``show``    — the log as a table or JSON, filtered by partner, type and time;
- ``export``  — copy the log to a directory for offline audits;
- ``serve``   — run the read-only AuditLog service on a log database;
- ``keygen``  — create the log's signing key (secret file) and verifier key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keynode.auditlog import (
    Entry,
    EntryType,
    ExportSource,
    LogSource,
    NoteSigner,
    NoteVerifier,
    decode_entry,
    export_log,
    verify_log,
)
from keynode.auditlog.checkpoint import unverified_size
from keynode.auditlog.state import default_state_path, load_trusted, save_trusted
from keynode.auditlog.store import LogStore
from keynode.errors import InputError, VerificationError
from keynode.policy import Policy, default_policy, load_policy_file
from keynode.storage import open_database


def _channel_source(address: str, certs: Path | None) -> LogSource:
    from keynode.auditlog_service.client import AuditClient  # gRPC only when needed
    from keynode.transport.tls import open_channel

    return AuditClient(open_channel(address, certs), address)


def _source(args: argparse.Namespace) -> LogSource:
    if getattr(args, "server", None):
        return _channel_source(args.server, args.certs)
    if getattr(args, "export", None):
        return ExportSource(args.export)
    if getattr(args, "db", None):
        return _store(args.db)
    raise InputError("say where the log is: --server ADDR, --export DIR or --db PATH")


def _store(target: str) -> LogStore:
    """An existing log database, opened for reading (never created by a reader)."""
    if "://" not in target and not Path(target).is_file():
        raise InputError(f"no log database at {target}")
    return LogStore(open_database(target))


def _add_source(parser: argparse.ArgumentParser, *, export: bool = True) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", metavar="ADDR", help="AuditLog service, host:port")
    if export:
        where.add_argument("--export", metavar="DIR", type=Path, help="an exported copy")
    where.add_argument("--db", metavar="PATH|URL", help="the log database itself (read-only)")
    parser.add_argument(
        "--certs", type=Path, metavar="DIR", help="mTLS certificate directory for --server"
    )


def _verifier(args: argparse.Namespace) -> NoteVerifier:
    key = args.key
    if args.key_file:
        try:
            key = args.key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read {args.key_file}: {exc}") from None
    if not key:
        raise InputError("give the log's verifier key: --key NAME+HASH+KEY or --key-file FILE")
    return NoteVerifier(key, args.origin)


def _policies(files: list[Path]) -> dict[str, Policy]:
    policies = [default_policy(), *(load_policy_file(f) for f in files)]
    return {p.hash: p for p in policies}


def run_verify(args: argparse.Namespace) -> int:
    """Verify the log and print a verdict; 0 if it holds, 1 naming the first failure."""
    verifier = _verifier(args)
    state = args.state or default_state_path(verifier.origin)
    started = time.monotonic()
    try:
        trusted = load_trusted(state, verifier)
        verdict = verify_log(_source(args), verifier, _policies(args.policy), trusted=trusted)
    except VerificationError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}) if args.json else f"FAIL: {exc}")
        return 1
    if not args.no_save:
        save_trusted(state, verdict.note)
    cp = verdict.checkpoint
    seconds = round(time.monotonic() - started, 1)
    if args.json:
        result = {
            "ok": True,
            "origin": cp.origin,
            "size": cp.size,
            "root": cp.root_hash.hex(),
            "checkpoints": verdict.checkpoints_checked,
            "previous_size": trusted.size if trusted else None,
            "seconds": seconds,
        }
        print(json.dumps(result))
        return 0
    since = (
        f"consistent with the {trusted.size} entries verified before" if trusted else "first run"
    )
    print(
        f"OK: {cp.origin}: {cp.size} entries, root {cp.root_hash.hex()}, "
        f"{verdict.checkpoints_checked} checkpoints, policy replayed, {since} ({seconds} s)"
    )
    return 0


def _parse_time(text: str) -> int:
    """Milliseconds since the epoch, from an ISO 8601 time or a number of milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"not a time: {text!r} (ISO 8601 or milliseconds)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _selected(args: argparse.Namespace, source: LogSource) -> Iterator[tuple[int, Entry]]:
    size = unverified_size(source.latest_checkpoint())
    since = _parse_time(args.since) if args.since else None
    until = _parse_time(args.until) if args.until else None
    for index, body in enumerate(source.entries(0, size)):
        entry = decode_entry(body)
        if args.partner and entry.subject != args.partner:
            continue
        if args.type and entry.type not in args.type:
            continue
        if (since is not None and entry.time_ms < since) or (
            until is not None and entry.time_ms >= until
        ):
            continue
        yield index, entry


def _row(index: int, entry: Entry) -> dict[str, Any]:
    when = datetime.fromtimestamp(entry.time_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return {"index": index, "time": when, **entry.to_json()}


def run_show(args: argparse.Namespace) -> int:
    """Print the log's entries (not verified: run ``verify`` for that)."""
    rows = (_row(i, e) for i, e in _selected(args, _source(args)))
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    print(f"{'#':>7}  {'time (UTC)':<24} {'type':<16} {'subject':<16} {'actor':<10} parameters")
    for row in rows:
        params = " ".join(f"{k}={v}" for k, v in sorted(row["params"].items()))
        print(
            f"{row['index']:>7}  {row['time'][:23]:<24} {row['type']:<16} "
            f"{row['subject'] or '-':<16} {row['actor']:<10} {params}"
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Copy the log (entries and signed checkpoints) into a directory."""
    source = _source(args)
    size = export_log(source, args.directory, source.checkpoints())
    print(f"exported {size} entries to {args.directory}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Serve the AuditLog service until interrupted."""
    from keynode import pki
    from keynode.auditlog_service.server import serve_audit
    from keynode.transport.auth import Authorizer
    from keynode.transport.tls import CertDir, server_credentials

    creds = authorizer = None
    if args.certs:
        if not args.crl:
            raise InputError("--certs needs --crl: the network's revocation list")
        network = CertDir.load(args.certs).identity.network
        ca = pki.read_certificate(args.certs / pki.CA_CERT)
        authorizer = Authorizer(network, pki.CrlFile(args.crl, ca))
        creds = server_credentials(args.certs)
    server = serve_audit(_store(args.db), args.listen, creds, authorizer=authorizer)
    print(f"audit log service on port {server.port} ({'mTLS' if creds else 'plaintext'})")
    sys.stdout.flush()
    try:
        server.server.wait_for_termination()
    finally:
        server.stop()
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    """Write ``PREFIX.key`` (secret, mode 0600) and ``PREFIX.pub`` (the verifier key)."""
    signer = NoteSigner.generate(args.name)
    secret = Path(f"{args.out}.key")
    if secret.exists():
        raise InputError(f"{secret} exists; not overwriting a signing key")
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(signer.signer_key() + "\n")
    Path(f"{args.out}.pub").write_text(signer.verifier_key + "\n", encoding="utf-8")
    print(signer.verifier_key)
    return 0


def register(commands: Any) -> None:
    """Add ``keynode audit ...`` to the top-level sub-parsers."""
    audit = commands.add_parser("audit", help="verify, show, export or serve the policy log")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = sub.add_parser("verify", help="prove the log complete, append-only and allowed")
    _add_source(verify)
    verify.add_argument("--key", help="the log's verifier key (NAME+HASH+BASE64)")
    verify.add_argument("--key-file", type=Path, help="file holding the verifier key")
    verify.add_argument("--origin", help="expected log origin (default: the key name)")
    verify.add_argument(
        "--policy", type=Path, action="append", default=[], help="a policy file the log loads"
    )
    verify.add_argument("--state", type=Path, help="where the last verified checkpoint is kept")
    verify.add_argument("--no-save", action="store_true", help="do not update the state file")
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(run=run_verify)

    show = sub.add_parser("show", help="print the log's entries (unverified)")
    _add_source(show)
    show.add_argument("--partner", help="only entries about this partner")
    show.add_argument(
        "--type", action="append", choices=[str(t) for t in EntryType], help="entry type(s)"
    )
    show.add_argument("--since", help="from this time (ISO 8601 or ms)")
    show.add_argument("--until", help="before this time (ISO 8601 or ms)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(run=run_show)

    export = sub.add_parser("export", help="copy the log into a directory for offline audits")
    export.add_argument("directory", type=Path)
    _add_source(export, export=False)
    export.set_defaults(run=run_export)

    serve = sub.add_parser("serve", help="run the read-only AuditLog service")
    serve.add_argument("--db", required=True, metavar="PATH|URL", help="the log database")
    serve.add_argument("--listen", default="127.0.0.1:7444", help="host:port (default %(default)s)")
    serve.add_argument("--certs", type=Path, help="key-node mTLS certificate directory")
    serve.add_argument("--crl", type=Path, help="the network's CRL (required with --certs)")
    serve.set_defaults(run=run_serve)

    keygen = sub.add_parser("keygen", help="create the log's signing and verifier keys")
    keygen.add_argument("--name", required=True, help="key name = log origin")
    keygen.add_argument("--out", required=True, help="file prefix: writes PREFIX.key, PREFIX.pub")
    keygen.set_defaults(run=run_keygen)
