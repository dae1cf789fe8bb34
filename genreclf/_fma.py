"""FMA's metadata: its ``tracks.csv``, and where the audio of each track is.

:func:`read_tracks` reads the three columns of ``fma_metadata/tracks.csv``
that :func:`genreclf.datasets.load_fma` needs, and :func:`track_path` names
the mp3 file of a track in the unpacked ``fma_<subset>/`` folder. What is
returned, excluded and warned about is decided in :mod:`genreclf.datasets`.
"""

import csv
import os

__all__ = ["COLUMNS", "SPLITS", "SUBSETS", "read_tracks", "track_path"]

#: The subsets, by size: each holds every track of the ones ranked below it
#: ("full" is every track of ``tracks.csv``).
SUBSETS = {"small": 0, "medium": 1, "large": 2, "full": 3}
#: The official splits (column ``('set', 'split')``).
SPLITS = ("training", "validation", "test")
#: The columns read from ``tracks.csv``, by their two-level header.
COLUMNS = {
    "subset": ("set", "subset"),
    "split": ("set", "split"),
    "genre_top": ("track", "genre_top"),
}


def read_tracks(path):
    """Read track_id, subset, split and genre_top from FMA's ``tracks.csv``.

    Equivalent to ``pandas.read_csv(path, index_col=0, header=[0, 1])``
    restricted to the three columns, but parses only those columns (the real
    file holds 52 columns and about 250 MB).
    """
    import pandas as pd

    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            top, sub = next(reader), next(reader)
            third = next(reader, [])
        except StopIteration:
            raise ValueError(
                f"{path}: not an FMA tracks.csv (expected a two-row column header)"
            ) from None
    # pandas writes the index name on a third header row: "track_id,,,,..."
    skip = 3 if third and third[0] and not any(third[1:]) else 2
    names = list(zip(top, sub, strict=False))
    positions = {}
    for key, column in COLUMNS.items():
        try:
            positions[key] = names.index(column)
        except ValueError:
            raise ValueError(
                f"{path}: column {column!r} not found; expected FMA's tracks.csv "
                "with the two-level header (read with "
                "pandas.read_csv(path, index_col=0, header=[0, 1]))"
            ) from None
    order = sorted(positions, key=positions.get)
    table = pd.read_csv(
        path,
        header=None,
        skiprows=skip,
        usecols=[0] + [positions[k] for k in order],
        names=["track_id"] + order,
        index_col=0,
        dtype={k: "object" for k in order},
        keep_default_na=False,
        na_values=[""],
    )
    return table.sort_index()


def track_path(audio_dir, track_id):
    """Return the mp3 of a track: ``<audio_dir>/<3 digits>/<6-digit id>.mp3``."""
    tid = f"{int(track_id):06d}"
    return os.path.join(audio_dir, tid[:3], tid + ".mp3")
