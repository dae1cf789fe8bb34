"""The embedded demo dataset: a few "genres" of generated music.

:func:`make_synthetic` writes a folder of clips in the layout that
:func:`genreclf.datasets.load_folder` reads and returns ``(paths, y)`` like
every loader. The sound engines are in :mod:`genreclf._synthetic` (NumPy
only). ``genreclf.make_synthetic`` and ``genreclf.datasets.make_synthetic``
name the same function.
"""

import json
import os

import numpy as np

from genreclf import _synthetic
from genreclf._files import atomic_write
from genreclf.datasets import _as_1d, _check_option

__all__ = ["SYNTHETIC_GENRES", "make_synthetic"]

#: The generated "genres" of :func:`make_synthetic`.
SYNTHETIC_GENRES = (
    "ambient",
    "chiptune",
    "folk",
    "hiphop",
    "noise",
    "rock",
    "swing",
    "techno",
)


_MANIFEST = ".genreclf-synthetic.json"


def _entropy(random_state):
    if isinstance(random_state, (int, np.integer)) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def make_synthetic(
    out_dir,
    n_per_genre=20,
    duration=5.0,
    sr=22050,
    random_state=None,
    *,
    genres=None,
    format="wav",
):
    """Generate the embedded demo dataset: a few "genres" of synthetic music.

    Eight generated styles that differ in rhythm, tempo, timbre and noise:

    - ``ambient``: slow sine pads with vibrato over wind, no drums;
    - ``chiptune``: fast square-wave arpeggios, pulse bass, crushed noise;
    - ``folk``: plucked (Karplus-Strong) melodies and strummed chords;
    - ``hiphop``: 80-96 BPM swung kick/snare patterns with a sub bass;
    - ``noise``: irregular noise bands, chirps, click trains and clusters;
    - ``rock``: distorted power-chord eighths, kick/snare backbeat;
    - ``swing``: ride cymbal in swing time, walking bass, comping chords;
    - ``techno``: four-on-the-floor kick, off-beat hats and bass, claps.

    Each clip draws its own tempo, key, pattern, tone colour, gain and mixed
    noise (12-35 dB SNR), so that the task is not trivial, yet a small CNN on
    MFCCs learns it. Files are written as ``out_dir/<genre>/<genre>.000NN.<ext>``,
    a layout that :func:`genreclf.datasets.load_folder` reads.

    Parameters
    ----------
    out_dir : str or path-like
        The output folder (created if needed).
    n_per_genre : int, default=20
        Clips per genre.
    duration : float, default=5.0
        Length of each clip in seconds.
    sr : int, default=22050
        Sample rate in Hz.
    random_state : int, RandomState instance or None, default=None
        Seed. With an int, clip ``i`` of a genre is the same (byte for byte
        for wav, flac and mp3) whatever ``n_per_genre`` and ``genres``, and files
        already generated with the same settings are reused, not rewritten.
    genres : sequence of str or None, default=None
        A subset of :data:`SYNTHETIC_GENRES`; None generates all eight.
    format : {"wav", "flac", "ogg", "mp3"}, default="wav"
        Audio format: 16-bit PCM wav, or the others through ``soundfile``.

    Returns
    -------
    paths : ndarray of shape (n_genres * n_per_genre,), dtype=object
        Absolute file paths (``str``), sorted.
    y : ndarray of shape (n_genres * n_per_genre,), dtype=object
        The genre of each file (``str``).

    Notes
    -----
    A manifest ``out_dir/.genreclf-synthetic.json`` records which settings
    produced each file. Files from an earlier call that the current call does
    not ask for are deleted, so ``load_folder(out_dir)`` returns the same
    clips; other files in ``out_dir`` are never touched.

    Examples
    --------
    >>> import tempfile
    >>> from genreclf.synthetic import make_synthetic
    >>> paths, y = make_synthetic(tempfile.mkdtemp(), n_per_genre=2,
    ...                           duration=0.5, random_state=0)
    >>> len(paths), y[0], y[-1]
    (16, 'ambient', 'techno')
    >>> paths[0].endswith("ambient.00000.wav")
    True
    """
    genres = list(SYNTHETIC_GENRES if genres is None else genres)
    unknown = sorted(set(genres) - set(SYNTHETIC_GENRES))
    if unknown or not genres:
        raise ValueError(
            f"genres must be a non-empty subset of {list(SYNTHETIC_GENRES)}, "
            f"got unknown {unknown or genres!r}"
        )
    _check_option("format", format, _synthetic.FORMATS)
    if int(n_per_genre) != n_per_genre or n_per_genre < 1:
        raise ValueError(f"n_per_genre must be a positive integer, got {n_per_genre!r}")
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
    if int(sr) != sr or sr < 1000:
        raise ValueError(f"sr must be an integer sample rate >= 1000 Hz, got {sr!r}")
    n_per_genre, sr = int(n_per_genre), int(sr)
    n = int(round(duration * sr))
    entropy = _entropy(random_state)

    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, _MANIFEST)
    try:
        with open(manifest_path, encoding="utf-8") as f:
            old = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        old = {}

    files = {}
    pairs = []
    for genre in sorted(genres):
        os.makedirs(os.path.join(out_dir, genre), exist_ok=True)
        g = SYNTHETIC_GENRES.index(genre)
        for i in range(n_per_genre):
            rel = f"{genre}/{genre}.{i:05d}.{format}"
            path = os.path.join(out_dir, *rel.split("/"))
            key = f"v{_synthetic.VERSION}:{entropy}:{g}:{i}:{n}:{sr}:{format}"
            entry = old.get(rel)
            if not (
                isinstance(entry, dict)
                and entry.get("key") == key
                and os.path.isfile(path)
                and os.path.getsize(path) == entry.get("size")
            ):
                seed = np.random.SeedSequence(entropy, spawn_key=(g, i))
                x = _synthetic.synth_clip(genre, np.random.default_rng(seed), n, sr)
                _synthetic.write_audio(path, x, sr, format)
            files[rel] = {"key": key, "size": os.path.getsize(path)}
            pairs.append((path, genre))

    for rel in set(old) - set(files):  # ours, from an earlier call
        stale = os.path.join(out_dir, *rel.split("/"))
        if os.path.isfile(stale):
            os.remove(stale)
    with atomic_write(manifest_path, "w") as f:
        json.dump({"version": _synthetic.VERSION, "files": files}, f, indent=0)
    pairs.sort()
    return _as_1d([p for p, _ in pairs]), _as_1d([g for _, g in pairs])
