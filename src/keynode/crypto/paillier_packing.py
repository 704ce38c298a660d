"""Several value columns in one Paillier plaintext, with checked headroom. Low-level.

A plaintext holds one *slot* per column, column 0 in the lowest bits. Column ``i`` takes
values in ``[0, 2^B_i)``; a sum of at most ``N`` such values is below
``N * 2^B_i <= 2^(B_i + ceil(log2 N))``, so a slot of ``B_i + ceil(log2 N)`` bits never
carries into its neighbour. Adding ciphertexts adds slots independently, so one
homomorphic sum over packed ciphertexts sums every column at once.

Noise can be negative, and a negative slot would borrow from the next one. A layout
with ``noise_bits = t > 0`` therefore reserves room for an offset ``2^(t-1)`` that the
aggregator adds with the noise (``offset + e`` with ``|e| < 2^(t-1)``), and the slot
grows to ``max(B_i + ceil(log2 N), t) + 1`` bits; :meth:`PackingLayout.unpack` removes
the offset.

Overflow is an error, never a wrong number:

- a value outside its column's range is the caller's data not fitting the declared
  layout: :class:`~keynode.errors.InputError`;
- summing more than ``N`` packed plaintexts, or noise beyond the reserved bits, would
  carry between slots; it is refused *before* computing, as a cap:
  :class:`~keynode.errors.LimitExceeded`;
- a decrypted plaintext that does not fit the layout can only come from a misbehaving
  peer or a foreign-key ciphertext: :class:`~keynode.errors.ProtocolError`.

A carry out of a value slot cannot always be seen in the slots themselves, so layouts
used for sums end with a *count* column (a 1-bit column holding 1 per row): a sum of
more than ``N`` rows then shows as a count above ``N`` or as a carry out of the top slot,
and :meth:`PackingLayout.unpack` refuses both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keynode.crypto.paillier_keys import PaillierPublicKey
from keynode.errors import InputError, LimitExceeded, ProtocolError


@dataclass(frozen=True)
class PackingLayout:
    """Slot widths for ``column_bits`` columns summed at most ``max_summands`` times."""

    column_bits: tuple[int, ...]
    max_summands: int
    noise_bits: int = 0

    def __post_init__(self) -> None:
        if not self.column_bits or any(b < 1 for b in self.column_bits):
            raise InputError("a layout needs at least one column of at least one bit")
        if self.max_summands < 1:
            raise InputError("max_summands must be at least 1")
        if self.noise_bits < 0 or self.noise_bits == 1:
            raise InputError("noise_bits must be 0 or at least 2")

    @property
    def headroom_bits(self) -> int:
        """``ceil(log2 N)``: the extra bits a sum of ``N`` values needs."""
        return (self.max_summands - 1).bit_length()

    @property
    def noise_offset(self) -> int:
        """The offset added with the noise (0 for a layout without noise)."""
        return 1 << (self.noise_bits - 1) if self.noise_bits else 0

    def slot_bits(self, column: int) -> int:
        """Width of the slot of ``column``."""
        sum_bits = self.column_bits[column] + self.headroom_bits
        return max(sum_bits, self.noise_bits) + 1 if self.noise_bits else sum_bits

    @property
    def total_bits(self) -> int:
        """Bits of a packed plaintext."""
        return sum(self.slot_bits(i) for i in range(len(self.column_bits)))

    def _shifts(self) -> list[int]:
        shifts, at = [], 0
        for i in range(len(self.column_bits)):
            shifts.append(at)
            at += self.slot_bits(i)
        return shifts

    def check_capacity(self, public_key: PaillierPublicKey) -> None:
        """Refuse a layout whose plaintexts would not fit the key's positive range."""
        if (1 << self.total_bits) > public_key.max_int:
            raise InputError(
                f"layout needs {self.total_bits} bits; a {public_key.key_bits}-bit key holds "
                f"{public_key.max_int.bit_length() - 1}"
            )

    def pack(self, values: Sequence[int]) -> int:
        """One plaintext holding ``values`` (one per column)."""
        if len(values) != len(self.column_bits):
            raise InputError(f"expected {len(self.column_bits)} values, got {len(values)}")
        packed = 0
        for v, bits, shift in zip(values, self.column_bits, self._shifts(), strict=True):
            if not 0 <= v < (1 << bits):
                raise InputError(f"value {v} does not fit a {bits}-bit column")
            packed |= int(v) << shift
        return packed

    def check_summands(self, count: int) -> None:
        """Refuse to sum more packed plaintexts than the layout has headroom for."""
        if count > self.max_summands:
            raise LimitExceeded(
                f"{count} values exceed the layout's headroom of {self.max_summands}"
            )

    def noise_plaintext(self, noise: Sequence[int]) -> int:
        """The plaintext to add for per-column ``noise``, offset included."""
        if not self.noise_bits:
            raise InputError("this layout reserves no room for noise")
        if len(noise) != len(self.column_bits):
            raise InputError("one noise value per column is needed")
        offset = self.noise_offset
        if any(abs(e) >= offset for e in noise):
            raise LimitExceeded("noise exceeds the layout's reserved bits")
        return sum((offset + e) << s for e, s in zip(noise, self._shifts(), strict=True))

    def unpack(self, plaintext: int) -> tuple[int, ...]:
        """The column sums (noise included) held by a decrypted, decoded plaintext."""
        if not 0 <= plaintext < (1 << self.total_bits):
            raise ProtocolError("invalid result")
        out = []
        offset = self.noise_offset
        slack = max(offset - 1, 0)  # largest |noise| the layout admits
        for i, (bits, shift) in enumerate(zip(self.column_bits, self._shifts(), strict=True)):
            slot = (int(plaintext) >> shift) & ((1 << self.slot_bits(i)) - 1)
            ceiling = self.max_summands * ((1 << bits) - 1)
            if not -slack <= slot - offset <= ceiling + slack:
                raise ProtocolError("invalid result")
            out.append(slot - offset)
        return tuple(out)
