"""Array validators shared by the pure-math modules (tax, rewards, voting, welfare).

The bottom layer of the package: it imports nothing from `sed_meltingpot`, so
every module may use it without an import circle, and every "must lie in
[0, 1]" error reads the same way.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["unit_interval_array"]


def unit_interval_array(values: ArrayLike, name: str) -> np.ndarray:
    """Return ``values`` as a float array, raising if any entry is NaN or outside [0, 1].

    The message names the first bad entry, e.g. ``rates[1]=1.5 is outside [0, 1]``.
    """
    arr = np.asarray(values, dtype=float)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN fails both comparisons.
    if np.any(bad):
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        label = name if arr.ndim == 0 else f"{name}[{', '.join(map(str, index))}]"
        value = arr[index] if arr.ndim else arr.item()
        raise ValueError(f"{label}={float(value)!r} is outside [0, 1]")
    return arr
