"""Former home of the window helpers, now :mod:`genreclf.windows`.

Kept so that code and pickles that name ``genreclf._slicing`` still resolve.
"""

from genreclf.windows import (  # noqa: F401
    COMBINE_RULES,
    WindowDataset,
    _tile_to,
    combine_windows,
    finish_combine,
    iter_window_batches,
    window_starts,
)

__all__ = [
    "COMBINE_RULES",
    "WindowDataset",
    "combine_windows",
    "finish_combine",
    "iter_window_batches",
    "window_starts",
]
