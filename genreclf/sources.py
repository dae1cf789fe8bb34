"""Which data a command uses: a folder, an FMA subset or the embedded demo.

The ``genreclf`` commands (and anyone scripting them) choose their data here,
split into a training and an evaluation part:

- :func:`select_data` reads the choice (a folder, a Free Music Archive root or
  neither, which means the embedded demo) and returns a :class:`DataSelection`;
- :func:`holdout` holds out a stratified part of a folder or of the demo;
- :func:`load_demo` writes (once) and lists the demo's synthetic music, sized
  by :data:`DEMO_DATA`;
- :func:`parse_splits` reads FMA split names as the command line gives them;
- :func:`find_audio_files` lists the audio files of files and folders.

The model settings of the demo are :data:`genreclf.pipeline.DEMO_OPTIONS`;
this module holds only its data settings.

Examples
--------
>>> parse_splits("training,validation")
['training', 'validation']
>>> X, y, X_eval, y_eval = holdout(["a", "b", "c", "d"], ["x", "x", "y", "y"], 0)
>>> X_eval is None and list(y) == ["x", "x", "y", "y"]
True
"""

import os
from collections import Counter
from typing import NamedTuple

__all__ = [
    "DEFAULT_TEST_SIZE",
    "DEMO_DATA",
    "DataSelection",
    "find_audio_files",
    "holdout",
    "load_demo",
    "parse_splits",
    "select_data",
]

#: The embedded demo's data: synthetic music
#: (:func:`genreclf.datasets.make_synthetic`), 20 clips of 3 s per style and a
#: fixed seed, sized with :data:`genreclf.pipeline.DEMO_OPTIONS` so that
#: ``mlflow run .`` (five members) trains and evaluates in a few minutes on two
#: CPU cores.
DEMO_DATA = {"n_per_genre": 20, "duration": 3.0, "random_state": 0}

#: Fraction of a folder (or of the demo) held out for evaluation by default.
DEFAULT_TEST_SIZE = 0.25

#: Sub-folder of the cache folder where the demo's audio is written.
_DEMO_FOLDER = "demo-audio"


class DataSelection(NamedTuple):
    """The data of a command: training part, evaluation part and their name.

    It unpacks as ``X, y, X_eval, y_eval, name``.

    Attributes
    ----------
    X : list of str or None
        Training files; None when only evaluation data was asked for.
    y : list of str or None
        Their genres.
    X_eval : list of str or None
        Evaluation files; None when there are none (``test_size=0``, or
        ``eval_split="none"``).
    y_eval : list of str or None
        Their genres.
    name : str
        Name of the data in a run: the folder's name, ``"fma_<subset>"`` or
        ``"demo"``.
    """

    X: object
    y: object
    X_eval: object
    y_eval: object
    name: str


def parse_splits(text):
    """Read FMA split names as the command line gives them.

    Parameters
    ----------
    text : str or None
        One split name, several separated by commas, or ``""``/``"all"``/None
        for every split.

    Returns
    -------
    splits : None, str or list of str
        None for every split, the one name, or the list of names, as
        :func:`genreclf.datasets.load_fma` takes ``split``.

    Examples
    --------
    >>> parse_splits("test")
    'test'
    >>> parse_splits(" training , validation ")
    ['training', 'validation']
    >>> parse_splits("all") is None
    True
    """
    if text is None or text.strip().lower() in ("", "all"):
        return None
    parts = [s.strip() for s in text.split(",") if s.strip()]
    return parts[0] if len(parts) == 1 else parts


def _check_stratifiable(y, test_size):
    """Raise a ValueError naming the genres with too few files for a hold-out."""
    rare = sorted(str(g) for g, n in Counter(y).items() if n < 2)
    if not rare:
        return
    listed = ", ".join(repr(g) for g in rare)
    which = f"genre {listed} has" if len(rare) == 1 else f"genres {listed} have"
    raise ValueError(
        f"{which} a single file: holding out a stratified {test_size:g} for "
        "evaluation needs at least 2 files per genre; add files of it, remove "
        "it, or hold out nothing (test_size=0, --test-size 0)"
    )


def holdout(paths, y, test_size, random_state=None):
    """Hold out a stratified part of the files for evaluation.

    Parameters
    ----------
    paths : sequence of str
        Audio files.
    y : sequence of str
        Their genres.
    test_size : float or int
        Fraction of the files (in ``(0, 1)``) or their number held out; 0 or
        None holds out nothing.
    random_state : int, RandomState instance or None, default=None
        Seed of the split.

    Returns
    -------
    X, y, X_eval, y_eval : lists
        The training part and the held-out part, in this order;
        ``X_eval`` and ``y_eval`` are None when nothing is held out (then
        ``X`` and ``y`` are the input).

    Raises
    ------
    ValueError
        If a genre has a single file (a stratified split needs two), naming
        the genre.

    Examples
    --------
    >>> X, y, X_eval, y_eval = holdout(
    ...     ["a", "b", "c", "d"], ["x", "x", "y", "y"], 0.5, random_state=0
    ... )
    >>> sorted(y_eval)
    ['x', 'y']
    >>> holdout(["a", "b", "c"], ["x", "x", "y"], 0.5)
    Traceback (most recent call last):
    ...
    ValueError: genre 'y' has a single file: holding out a stratified 0.5 ...
    """
    if not test_size:
        return paths, y, None, None
    from sklearn.model_selection import train_test_split

    _check_stratifiable(y, test_size)
    X, X_eval, y, y_eval = train_test_split(
        paths, y, test_size=test_size, stratify=y, random_state=random_state
    )
    return X, y, X_eval, y_eval


def load_demo(cache_dir):
    """Write the embedded demo's audio (once) and list it.

    Parameters
    ----------
    cache_dir : str or path-like
        The command's cache folder; the clips go to its ``demo-audio/``
        sub-folder, where a later call finds them instead of writing them
        again.

    Returns
    -------
    paths : list of str
        The clips, :data:`DEMO_DATA` ``["n_per_genre"]`` per synthetic style.
    y : list of str
        Their styles.

    See Also
    --------
    genreclf.datasets.make_synthetic : the generator, with the styles listed.

    Examples
    --------
    >>> paths, y = load_demo(".genreclf-cache")  # doctest: +SKIP
    >>> len(paths), sorted(set(y))[:2]  # doctest: +SKIP
    (160, ['ambient', 'chiptune'])
    """
    from genreclf.datasets import make_synthetic

    folder = os.path.join(os.fspath(cache_dir), _DEMO_FOLDER)
    return make_synthetic(folder, **DEMO_DATA)


def select_data(
    data=None,
    fma=None,
    *,
    subset="small",
    split=None,
    eval_split="test",
    test_size=None,
    random_state=0,
    cache_dir=".genreclf-cache",
    evaluation_only=False,
):
    """Choose the training and evaluation data of a command.

    Parameters
    ----------
    data : str or path-like, optional
        A folder of audio files (:func:`genreclf.datasets.load_folder`).
    fma : str or path-like, optional
        A Free Music Archive root (:func:`genreclf.datasets.load_fma`).
        Without ``data`` or ``fma``: the embedded demo (:func:`load_demo`).
    subset : {"small", "medium", "large", "full"}, default="small"
        FMA subset.
    split : str, optional
        FMA split(s) to use (see :func:`parse_splits`): for training by
        default ``"training"``, for evaluation only ``"test"``.
    eval_split : str, default="test"
        FMA split(s) to evaluate on after training; ``"none"``: no evaluation.
    test_size : float, optional
        Fraction of a folder or of the demo held out for evaluation,
        stratified (see :func:`holdout`); None: :data:`DEFAULT_TEST_SIZE`;
        0: none. An FMA root uses its official splits instead.
    random_state : int, default=0
        Seed of the held-out split.
    cache_dir : str or path-like, default=".genreclf-cache"
        Where the demo's audio is written.
    evaluation_only : bool, default=False
        Only evaluation data is wanted: a whole folder, the FMA ``split``
        (default ``"test"``) or the demo's held-out part.

    Returns
    -------
    selection : DataSelection
        ``X, y, X_eval, y_eval, name``; ``X`` and ``y`` are None when
        ``evaluation_only``.

    Raises
    ------
    ValueError
        If both ``data`` and ``fma`` are given, if the folder or the demo has
        no audio file, if ``evaluation_only`` finds no evaluation data, or if
        a genre is too small to hold out a part of it.

    Examples
    --------
    >>> import tempfile
    >>> from genreclf.datasets import make_synthetic
    >>> folder = tempfile.mkdtemp()
    >>> _ = make_synthetic(folder, n_per_genre=4, duration=0.2, random_state=0,
    ...                    genres=["rock", "folk"])
    >>> X, y, X_eval, y_eval, name = select_data(folder, test_size=0.25)
    >>> len(X), len(X_eval), sorted(y_eval)
    (6, 2, ['folk', 'rock'])
    >>> select_data(folder, test_size=0).X_eval is None
    True
    """
    from genreclf.datasets import load_fma, load_folder

    if data and fma:
        raise ValueError("give data or fma, not both")
    if test_size is None:
        test_size = DEFAULT_TEST_SIZE
    if fma:
        name = f"fma_{subset}"
        if evaluation_only:
            X, y = load_fma(fma, subset=subset, split=parse_splits(split or "test"))
            return _evaluation(X, y, name)
        X, y = load_fma(fma, subset=subset, split=parse_splits(split or "training"))
        X_eval = y_eval = None
        if (eval_split or "test").strip().lower() != "none":
            X_eval, y_eval = load_fma(
                fma, subset=subset, split=parse_splits(eval_split or "test")
            )
        return DataSelection(X, y, X_eval, y_eval, name)
    if data:
        X, y = load_folder(data)
        name = os.path.basename(os.path.abspath(data))
        if evaluation_only:
            return _evaluation(X, y, name)
    else:
        X, y = load_demo(cache_dir)
        name = "demo"
    if len(X) == 0:
        raise ValueError(f"{data or 'the demo'}: no audio files found")
    X, y, X_eval, y_eval = holdout(X, y, test_size, random_state)
    if evaluation_only:
        return _evaluation(X_eval, y_eval, name)
    return DataSelection(X, y, X_eval, y_eval, name)


def _evaluation(X, y, name):
    if X is None or len(X) == 0:
        raise ValueError("no evaluation data: give --data, --fma or a --test-size > 0")
    return DataSelection(None, None, X, y, name)


def find_audio_files(inputs):
    """List the audio files of files and folders, as ``genreclf predict`` does.

    Parameters
    ----------
    inputs : sequence of str or path-like
        Files (kept as given, whatever their extension) and folders (searched
        at any depth for names ending in
        :data:`genreclf.datasets.AUDIO_EXTENSIONS`; names starting with ``.``
        are skipped).

    Returns
    -------
    paths : list of str
        The files in input order, each folder's files sorted.

    Raises
    ------
    FileNotFoundError
        If a folder holds no audio file.

    Examples
    --------
    >>> find_audio_files(["a.wav", "notes.txt"])
    ['a.wav', 'notes.txt']
    """
    from genreclf.datasets import AUDIO_EXTENSIONS

    paths = []
    for item in inputs:
        item = os.fspath(item)
        if not os.path.isdir(item):
            paths.append(item)
            continue
        found = []
        for folder, dirs, files in os.walk(item):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += [
                os.path.join(folder, f)
                for f in files
                if f.lower().endswith(AUDIO_EXTENSIONS) and not f.startswith(".")
            ]
        if not found:
            raise FileNotFoundError(f"{item}: no audio files in this folder")
        paths += sorted(found)
    return paths
