"""What the end-to-end benchmarks share: the test network's names and a wall-time wrapper."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

NETWORK = "benchnet"
PROFILE = "bench-profile:0001"


def timed(into: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, adding its wall time to ``into[name]`` on every call."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - start

    return wrapper
