"""Progress bars for the clients' long streams (on stderr, silent unless asked)."""

from __future__ import annotations

from typing import Never

from tqdm import tqdm


def progress_bar(show: bool, total: int, desc: str, unit: str, position: int) -> tqdm[Never]:
    """One bar among several stacked ones (``position``), cleared when it closes."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        position=position,
        disable=not show,
        leave=False,
        unit_scale=True,
        dynamic_ncols=True,
    )
