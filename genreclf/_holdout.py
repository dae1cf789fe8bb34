"""The held-out validation split of :class:`genreclf.GenreNet`, and its warning.

:func:`holdout_split` holds out ``valid_size`` of the clips, stratified by
genre when possible; where it is not (a genre with a single file), the
warning names the genres, says why and what to change. The nets of a
:class:`~genreclf.GenreEnsemble` are fitted on encoded labels: inside
:func:`label_names` their warnings name the genres all the same.
"""

import contextlib
import contextvars
import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import StratifiedShuffleSplit

from genreclf.exceptions import GenreclfWarning

__all__ = ["genre_names", "holdout_split", "label_names"]


def _n_valid(valid_size, n_samples):
    """Return how many clips ``valid_size`` holds out (0: none)."""
    if valid_size is None:
        return 0
    if isinstance(valid_size, Integral) and not isinstance(valid_size, bool):
        if valid_size < 0:
            raise ValueError(f"valid_size must be >= 0, got {valid_size}")
        return int(valid_size)
    if isinstance(valid_size, Real) and 0 <= valid_size < 1:
        return math.ceil(valid_size * n_samples)
    raise ValueError(
        f"valid_size must be None, a float in [0, 1) or an int >= 0, got {valid_size!r}"
    )


#: Genre names of the integer labels that the nets of an ensemble are fitted
#: on (set by :func:`label_names` around each member's fit), for messages.
_LABEL_NAMES = contextvars.ContextVar("genreclf_label_names", default=None)


@contextlib.contextmanager
def label_names(names):
    """Name the integer labels ``0 .. n-1`` of the nets fitted inside, for messages.

    :class:`~genreclf.GenreEnsemble` fits its members on encoded labels; in
    this context their warnings (:func:`holdout_split`) name the genres.

    Parameters
    ----------
    names : array-like of shape (n_classes,) or None
        ``names[k]`` is the genre of label ``k``; None names nothing.

    Examples
    --------
    >>> with label_names(["jazz", "rock"]):
    ...     genre_names(np.array([1, 0])).tolist()
    ['rock', 'jazz']
    >>> genre_names(np.array([1, 0])).tolist()
    [1, 0]
    """
    token = _LABEL_NAMES.set(None if names is None else np.asarray(names))
    try:
        yield
    finally:
        _LABEL_NAMES.reset(token)


def genre_names(classes):
    """The genre name of each of ``classes``, as set by :func:`label_names`.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        A net's ``classes_``.

    Returns
    -------
    names : ndarray of shape (n_classes,)
        ``classes`` themselves unless they are integer labels that an
        enclosing :func:`label_names` names.
    """
    classes = np.asarray(classes)
    names = _LABEL_NAMES.get()
    if (
        names is None
        or classes.dtype.kind not in "iu"
        or not len(classes)
        or classes.min() < 0
        or classes.max() >= len(names)
    ):
        return classes
    return names[classes]


def _listed(names, limit=8):
    """``'a', 'b' and 3 more``, for a message."""
    shown = ", ".join(repr(_plain(n)) for n in names[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _plain(value):
    """A NumPy scalar as the Python value it holds (``'rock'``, not ``np.str_``)."""
    return value.item() if isinstance(value, np.generic) else value


def _why_not_stratified(y, n_valid, names):
    """Why a stratified split of ``n_valid`` clips is impossible, and the fix.

    Returns
    -------
    why : str or None
        The reason in the user's terms (None: stratification is possible).
    fix : str
        What to change.
    """
    labels, counts = np.unique(y, return_counts=True)
    named = labels
    if names is not None and labels.dtype.kind in "iu":
        named = np.asarray(names)[labels]
    off = "set valid_size=0 (ensemble__net__valid_size=0 in a pipeline) to "
    off += "train on every clip without validation"
    single = named[counts < 2]
    if len(single):
        genre = "genre" if len(single) == 1 else "genres"
        has = "has" if len(single) == 1 else "have"
        return (
            f"{genre} {_listed(single)} {has} a single clip, and a "
            "stratified validation split needs at least 2 clips of every genre",
            f"add files of {_listed(single)}, or {off}",
        )
    n_train = max(len(y) - n_valid, 0)
    if n_valid < len(labels):
        return (
            f"{n_valid} validation clip(s) cannot include each of the "
            f"{len(labels)} genres",
            f"set valid_size to at least {len(labels)} clips, or {off}",
        )
    if n_train < len(labels):
        return (
            f"holding out {n_valid} clips leaves {n_train} for training, fewer "
            f"than the {len(labels)} genres",
            f"set valid_size to at most {len(y) - len(labels)} clips, or {off}",
        )
    return None, off


def holdout_split(y, valid_size, random_state, names=None):
    """Split clips into a training and a held-out validation part.

    Stratified when possible. Where a stratified split is impossible (a
    genre with one clip, fewer validation clips than genres), the
    validation clips are drawn genre by genre, never taking a genre's last
    clip, with a :class:`~genreclf.exceptions.GenreclfWarning` that names the
    genres, says why and what to change. When no clip can be held out, all
    clips train and the validation part is empty (the fit then keeps its
    last epoch).

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels.
    valid_size : float, int or None
        Fraction (float in [0, 1)) or number (int) of clips to hold out;
        0 or None holds out nothing.
    random_state : int
        Seed of the split.
    names : array-like of shape (n_classes,) or None, default=None
        Genre name of each label when ``y`` holds positions ``0 .. n-1``
        (encoded labels), for the warning; None: the labels are the names.

    Returns
    -------
    train : ndarray of int
        Indices of the training clips.
    valid : ndarray of int
        Indices of the held-out clips (possibly empty).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    >>> train, valid = holdout_split(y, 0.2, random_state=0)
    >>> sorted(y[valid].tolist())
    [0, 1]
    """
    y = np.asarray(y)
    n_samples = len(y)
    all_idx = np.arange(n_samples)
    n_valid = _n_valid(valid_size, n_samples)
    if n_valid == 0:
        return all_idx, all_idx[:0]
    why, fix = _why_not_stratified(y, n_valid, names)
    if why is None:
        try:
            splitter = StratifiedShuffleSplit(
                n_splits=1, test_size=n_valid, random_state=random_state
            )
            train, valid = next(splitter.split(np.zeros(n_samples), y))
            return np.sort(train), np.sort(valid)
        except ValueError as exc:
            why = str(exc)
    rng = np.random.default_rng(random_state)
    # Candidates: every clip but one per genre, dealt out genre by genre.
    queues = []
    for label in rng.permutation(np.unique(y)):
        members = rng.permutation(np.flatnonzero(y == label))
        queues.append(list(members[1:]))
    picked = []
    while len(picked) < n_valid and any(queues):
        for queue in queues:
            if queue and len(picked) < n_valid:
                picked.append(queue.pop())
    if not picked:
        warnings.warn(
            f"GenreNet: no clip can be held out for validation ({n_samples} "
            f"clips; {why}): training on all of them and keeping the last "
            f"epoch. To fix it, {fix}.",
            GenreclfWarning,
            stacklevel=3,
        )
        return all_idx, all_idx[:0]
    warnings.warn(
        f"GenreNet: a stratified validation split of {n_valid} of {n_samples} "
        f"clips is impossible ({why}); holding out {len(picked)} clip(s) "
        "drawn genre by genre, keeping at least one clip of every genre for "
        f"training. To fix it, {fix}.",
        GenreclfWarning,
        stacklevel=3,
    )
    valid = np.sort(np.asarray(picked, dtype=np.intp))
    return np.setdiff1d(all_idx, valid), valid
