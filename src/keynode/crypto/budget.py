"""A per-partner differential-privacy budget: pure data, no storage.

Pure ``epsilon``-DP releases compose by adding their ``epsilon`` (basic sequential
composition), so a partner's budget is a limit and what has been spent, in exact
rationals (a float sum drifts and could let a query through at the boundary). Charging
returns a new budget or refuses with :class:`~keynode.errors.LimitExceeded`; whoever owns
persistence (the broker) stores the result before releasing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from keynode.errors import InputError, LimitExceeded


@dataclass(frozen=True)
class EpsilonBudget:
    """``partner`` may spend up to ``limit`` in total; ``spent`` so far."""

    partner: str
    limit: Fraction
    spent: Fraction = field(default=Fraction(0))

    def __post_init__(self) -> None:
        if self.limit < 0 or not 0 <= self.spent <= self.limit:
            raise InputError("a budget needs 0 <= spent <= limit")

    @property
    def remaining(self) -> Fraction:
        """What is left to spend."""
        return self.limit - self.spent

    def charge(self, epsilon: Fraction) -> EpsilonBudget:
        """The budget after a query costing ``epsilon``; refuses once it would overspend."""
        if epsilon <= 0:
            raise InputError("a query must cost a positive epsilon")
        if self.spent + epsilon > self.limit:
            raise LimitExceeded("the privacy budget for this partner is spent")
        return EpsilonBudget(self.partner, self.limit, self.spent + epsilon)
