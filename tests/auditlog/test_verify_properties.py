"""Random honest histories verify; any single changed byte of their export does not."""

from __future__ import annotations

import tempfile
from pathlib import Path

from auditlog_support import Network, make_signer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keynode.auditlog import ExportSource, NoteVerifier, PolicyLog, export_log, verify_log
from keynode.auditlog.export import ENTRIES
from keynode.errors import KeynodeError, VerificationError
from keynode.policy import default_policy

POLICY = default_policy()
PARTNERS = ["bank", "insurer", "telco"]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("level"), st.sampled_from(PARTNERS), st.integers(1, 6)),
        st.tuples(
            st.just("use"), st.sampled_from(PARTNERS), st.sampled_from(sorted(POLICY.operations))
        ),
        st.tuples(st.just("resign"), st.sampled_from(PARTNERS), st.just(0)),
        st.tuples(st.just("wait"), st.just(""), st.integers(1, 400_000)),
    ),
    min_size=1,
    max_size=25,
)


def play(network: Network, history: list[tuple[str, str, int | str]]) -> None:
    """Drive the honest broker; requests the policy refuses are logged as refusals."""
    for partner in PARTNERS:
        network.enrol(partner)
    for kind, partner, arg in history:
        standing = network.standings.get(partner)
        if kind == "wait":
            network.tick(int(arg))
        elif kind == "level" and standing and not standing.resigned and standing.level != arg:
            network.set_level(partner, int(arg))
        elif kind == "resign" and standing and not standing.resigned:
            network.resign(partner)
        elif kind == "use" and standing:
            try:
                signed = network.grant(partner, str(arg))
            except KeynodeError:
                continue
            network.tick()
            network.release(signed, released=POLICY.limits.min_cohort)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.data())
def test_honest_histories_verify_and_any_changed_byte_is_caught(
    history: list[tuple[str, str, int | str]], data: st.DataObject
) -> None:
    verifier = NoteVerifier(make_signer().verifier_key)
    with tempfile.TemporaryDirectory() as tmp:
        log = PolicyLog.open(str(Path(tmp) / "log.db"), make_signer())
        play(Network(log), history)
        export_log(log.store, Path(tmp) / "export", log.store.checkpoints())
        log.close()
        source = ExportSource(Path(tmp) / "export")
        verify_log(source, verifier, {POLICY.hash: POLICY})

        path = Path(tmp) / "export" / ENTRIES
        raw = bytearray(path.read_bytes())
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
        path.write_bytes(bytes(raw))
        try:
            verify_log(source, verifier, {POLICY.hash: POLICY})
        except VerificationError:
            return
        raise AssertionError(f"changing byte {at} went unnoticed")
