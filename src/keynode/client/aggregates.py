"""The partner's side of the Aggregates service, in both directions.

:meth:`AggregatesClient.aggregate`: the partner's values summed per key-node segment.
The partner is the value holder of :mod:`keynode.protocols.aggregate`: it encrypts its
value columns under its own Paillier key and decrypts the result; the key node sums the
ciphertexts of the shared records per segment without learning the values, and the
partner learns only the released sums and counts (see ``docs/aggregates.md``).

:meth:`AggregatesClient.key_node_values`: the key node's values summed over the
partner's overlap. Roles swapped: the partner is the aggregator (its identifiers, no
segments), sums the key node's ciphertexts over the records it shares, applies ``k`` and
returns one re-randomised ciphertext; the key node decrypts it and, once the release is
logged, returns the sum and count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import grpc

from keynode.aggregates.service import OPERATION
from keynode.client.broker import PartnerBrokerClient
from keynode.client.progress import progress_bar
from keynode.crypto.batch import GroupPool
from keynode.crypto.paillier import MIN_KEY_BITS, PaillierPrivateKey
from keynode.crypto.paillier_pool import EncryptionPool
from keynode.crypto.ristretto255 import ELEMENT_BYTES
from keynode.errors import InputError, ProtocolError
from keynode.protocols.aggregate import (
    AggregatePolicy,
    AggregateResponse,
    Aggregator,
    AggregatorRequest,
    HolderHeader,
    RecordChunk,
    ValueHolder,
)
from keynode.transport.status import error_from_rpc
from keynode.v1 import aggregates_pb2 as pb
from keynode.v1 import aggregates_pb2_grpc as pb_grpc

_LABEL = 2 * ELEMENT_BYTES
#: Records per UploadRecords call: each call stays well inside the server's connection
#: age (a few minutes), and the next one starts on a fresh connection if needed.
RECORDS_PER_CALL = 50_000


@dataclass(frozen=True)
class SegmentResult:
    """One agreed segment: the column sums and the count of shared records, or
    ``None`` for both when the segment had fewer than ``k`` shared records."""

    segment: str
    sums: tuple[int, ...] | None
    count: int | None

    @property
    def suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True)
class AggregateOutcome:
    """Every agreed segment (released or suppressed) and the threshold applied."""

    segments: tuple[SegmentResult, ...]
    k: int
    key_node_elements: int


@dataclass(frozen=True)
class KeyNodeValuesOutcome:
    """The key node's value sums over the shared records, their count, and ``k``."""

    sums: tuple[int, ...]
    count: int
    k: int
    key_node_records: int


@dataclass(frozen=True)
class PendingValues:
    """A key-node-values session whose aggregate is computed but not yet sent:
    ``ciphertext`` is ``None`` when fewer than ``k`` records are shared."""

    session_id: str
    ciphertext: bytes | None
    k: int
    key_node_records: int


def broker_grants(
    channel: grpc.Channel, set_size: int, target: str = "", *, operation: str = OPERATION
) -> Callable[[], bytes]:
    """A source of fresh grants for ``operation`` from the broker on ``channel``."""
    broker = PartnerBrokerClient(channel, target=target)
    return lambda: bytes(broker.grant(operation, set_size=set_size).token)


class AggregatesClient:
    """Runs segment-aggregate sessions against a key node's Aggregates service.

    ``unary_timeout_s`` bounds the short calls, ``stream_timeout_s`` each streaming call.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        target: str = "",
        unary_timeout_s: float = 60.0,
        stream_timeout_s: float = 1800.0,
    ) -> None:
        self._stub = pb_grpc.AggregatesStub(channel)
        self._target = target
        self._unary_timeout = unary_timeout_s
        self._stream_timeout = stream_timeout_s

    def aggregate(
        self,
        partner: str,
        records: Sequence[Sequence[bytes]],
        values: Sequence[Sequence[int]],
        column_bits: Sequence[int],
        private_key: PaillierPrivateKey,
        profile_id: str,
        pool: GroupPool,
        *,
        grants: Callable[[], bytes],
        epsilon: Fraction | None = None,
        encryption: EncryptionPool | None = None,
        show_progress: bool = False,
    ) -> AggregateOutcome:
        """Run one session; ``values[i]`` are the columns of ``records[i]``.

        ``grants()`` returns a fresh ``aggregate.segment`` grant from the broker: one opens
        the session, another (the first may have expired by then) covers the release.
        """
        if not records:
            raise InputError("there are no records to aggregate")
        holder = ValueHolder(
            records, values, column_bits, private_key, pool, epsilon=epsilon, encryption=encryption
        )
        try:
            opened = self._stub.OpenSession(
                pb.OpenAggregateRequest(
                    partner=partner,
                    grant=grants(),
                    profile_id=profile_id,
                    record_count=len(records),
                    record_width=holder.width,
                    column_bits=list(column_bits),
                    public_key=private_key.public_key.to_bytes(),
                    epsilon_numerator=epsilon.numerator if epsilon else 0,
                    epsilon_denominator=epsilon.denominator if epsilon else 0,
                ),
                timeout=self._unary_timeout,
            )
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        bars = _Bars(show_progress, opened.key_node_element_count, len(records))
        try:
            response = self._run(holder, opened, bars, grants)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        finally:
            bars.close()
        results = holder.result(response)
        names = tuple(opened.segments)
        return AggregateOutcome(
            tuple(SegmentResult(names[r.segment], r.sums, r.count) for r in results),
            opened.min_cohort,
            opened.key_node_element_count,
        )

    def _run(
        self,
        holder: ValueHolder,
        opened: pb.OpenAggregateResponse,
        bars: _Bars,
        grants: Callable[[], bytes],
    ) -> AggregateResponse:
        ref = pb.AggregateSessionRef(session_id=opened.session_id)
        elements, labels, label_key = bytearray(), bytearray(), b""
        for chunk in self._stub.DownloadRequest(ref, timeout=self._stream_timeout):
            elements += chunk.elements
            labels += chunk.labels
            label_key = label_key or chunk.label_key
            bars.download.update(len(chunk.elements) // ELEMENT_BYTES)
        # With a single segment the key node sends no labels (a plain intersection-sum).
        request = AggregatorRequest(bytes(elements), bytes(labels) or None, label_key or None)
        header = holder.respond(request)
        self._stub.UploadHeader(
            _header_chunks(
                opened.session_id,
                header.reblinded,
                header.reblinded_labels or b"",
                opened.max_chunk_elements,
            ),
            timeout=self._stream_timeout,
        )
        chunks = holder.record_chunks(opened.max_chunk_records)
        batch = _Batches(opened.session_id, chunks, holder.width, bars)
        while batch.more():
            self._stub.UploadRecords(batch.next_call(), timeout=self._stream_timeout)
        finish = pb.FinishRequest(session_id=opened.session_id, grant=grants())
        result = self._stub.Finish(finish, timeout=self._unary_timeout)
        return _response(result, tuple(opened.segments))

    def key_node_values(
        self,
        partner: str,
        identifiers: Sequence[bytes],
        profile_id: str,
        pool: GroupPool,
        *,
        grants: Callable[[], bytes],
        min_key_bits: int = MIN_KEY_BITS,
        show_progress: bool = False,
    ) -> KeyNodeValuesOutcome:
        """The key node's values summed over the records it shares with ``identifiers``.

        ``grants()`` returns a fresh ``aggregate.keynode_values`` grant (see
        :func:`broker_grants`): one opens the session, another covers the release.
        """
        pending = self.compute_key_node_values(
            partner,
            identifiers,
            profile_id,
            pool,
            grant=grants(),
            min_key_bits=min_key_bits,
            show_progress=show_progress,
        )
        return self.finish_key_node_values(pending, grants(), pending.ciphertext)

    def compute_key_node_values(
        self,
        partner: str,
        identifiers: Sequence[bytes],
        profile_id: str,
        pool: GroupPool,
        *,
        grant: bytes,
        min_key_bits: int = MIN_KEY_BITS,
        show_progress: bool = False,
    ) -> PendingValues:
        """Open a session, run the aggregator's side, and return the aggregate unsent."""
        keys = list(dict.fromkeys(identifiers))
        if not keys:
            raise InputError("there are no identifiers to match")
        try:
            opened = self._stub.OpenValuesSession(
                pb.OpenValuesRequest(
                    partner=partner, grant=grant, profile_id=profile_id, element_count=len(keys)
                ),
                timeout=self._unary_timeout,
            )
            policy = AggregatePolicy(k=max(1, opened.min_cohort), min_key_bits=min_key_bits)
            aggregator = Aggregator(keys, pool, policy)
            session_id, step = opened.session_id, opened.max_chunk_elements
            self._stub.UploadValuesRequest(
                _header_chunks(session_id, aggregator.request().elements, b"", step),
                timeout=self._stream_timeout,
            )
            ref = pb.AggregateSessionRef(session_id=session_id)
            reblinded = b"".join(
                c.elements
                for c in self._stub.DownloadValuesHeader(ref, timeout=self._stream_timeout)
            )
            aggregator.accept_header(
                HolderHeader(
                    public_key=opened.public_key,
                    column_bits=tuple(opened.column_bits),
                    width=opened.record_width,
                    record_count=opened.record_count,
                    reblinded=reblinded,
                    reblinded_labels=None,
                )
            )
            bar = progress_bar(show_progress, opened.record_count, "key node records", "rec", 0)
            with bar:
                for chunk in self._stub.DownloadValueRecords(ref, timeout=self._stream_timeout):
                    aggregator.add_records(RecordChunk(chunk.elements, chunk.ciphertexts))
                    bar.update(len(chunk.ciphertexts) // (2 * len(opened.public_key)))
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        response, _ = aggregator.finish()
        released = response.released[0][1] if response.released else None
        return PendingValues(session_id, released, opened.min_cohort, opened.record_count)

    def finish_key_node_values(
        self, pending: PendingValues, grant: bytes, ciphertext: bytes | None
    ) -> KeyNodeValuesOutcome:
        """Send ``ciphertext`` (normally ``pending.ciphertext``) under a fresh grant; the
        key node decrypts it, logs the release and returns the sum and count."""
        request = pb.FinishValuesRequest(
            session_id=pending.session_id, grant=grant, ciphertext=ciphertext or b""
        )
        try:
            result = self._stub.FinishValues(request, timeout=self._unary_timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err, self._target) from None
        return KeyNodeValuesOutcome(
            tuple(result.sums), result.count, pending.k, pending.key_node_records
        )


def _response(result: pb.AggregateResult, names: tuple[str, ...]) -> AggregateResponse:
    """The protocol's response, with segment names turned back into catalogue ids."""
    index = {name: i for i, name in enumerate(names)}
    try:
        released = tuple((index[r.segment], r.ciphertext) for r in result.released)
        suppressed = tuple(index[s] for s in result.suppressed)
    except KeyError:
        raise ProtocolError("the result names a segment outside the catalogue") from None
    if sorted([s for s, _ in released] + list(suppressed)) != list(range(len(names))):
        raise ProtocolError("the result must cover every catalogue segment once")
    return AggregateResponse(released, suppressed)


def _header_chunks(
    session_id: str, elements: bytes, labels: bytes, step: int
) -> Iterator[pb.LabelledChunk]:
    for sequence, start in enumerate(range(0, len(elements) // ELEMENT_BYTES, step)):
        yield pb.LabelledChunk(
            session_id=session_id,
            sequence=sequence,
            elements=elements[start * ELEMENT_BYTES : (start + step) * ELEMENT_BYTES],
            labels=labels[start * _LABEL : (start + step) * _LABEL],
        )


class _Batches:
    """Splits the record chunks into UploadRecords calls of about ``RECORDS_PER_CALL``
    records; sequence numbers run on across calls."""

    def __init__(
        self, session_id: str, chunks: Iterator[RecordChunk], width: int, bars: _Bars
    ) -> None:
        self._session_id = session_id
        self._chunks = chunks
        self._record_bytes = width * ELEMENT_BYTES
        self._bars = bars
        self._sequence = 0
        self._pending = next(chunks, None)

    def more(self) -> bool:
        return self._pending is not None

    def next_call(self) -> Iterator[pb.RecordChunk]:
        sent = 0
        while self._pending is not None and sent < RECORDS_PER_CALL:
            chunk, count = self._pending, len(self._pending.elements) // self._record_bytes
            yield pb.RecordChunk(
                session_id=self._session_id,
                sequence=self._sequence,
                elements=chunk.elements,
                ciphertexts=chunk.ciphertexts,
            )
            self._sequence += 1
            sent += count
            self._bars.records.update(count)
            self._pending = next(self._chunks, None)


class _Bars:
    """Progress bars (silent unless asked)."""

    def __init__(self, show: bool, key_node_elements: int, records: int) -> None:
        self.download = progress_bar(show, key_node_elements, "key node set", "el", 0)
        self.records = progress_bar(show, records, "encrypt + upload", "rec", 1)

    def close(self) -> None:
        self.download.close()
        self.records.close()
