"""Every error and warning that genreclf raises, under one base class.

Catch :class:`GenreclfError` to handle anything the package reports about its
input, its files or its tracking store::

    try:
        pipeline.fit(paths, y)
    except genreclf.GenreclfError as err:
        print(err)

The classes keep their standard bases as well (``AudioLoadError`` is a
``ValueError``, ``TrackingServerError`` a ``RuntimeError``, ``DownloadError``
an ``OSError``), so code written against those keeps working.
"""

import os
import signal

__all__ = [
    "AudioLoadError",
    "BadRequestError",
    "ChecksumError",
    "DatasetWarning",
    "DownloadError",
    "FeatureExtractionError",
    "GenreclfError",
    "GenreclfWarning",
    "NoAudioError",
    "TrackingServerError",
    "TrainingInterrupted",
    "UsageError",
]


class GenreclfError(Exception):
    """Base class of every error (and warning) of genreclf.

    Examples
    --------
    >>> from genreclf.exceptions import AudioLoadError, GenreclfError
    >>> issubclass(AudioLoadError, GenreclfError)
    True
    """


class GenreclfWarning(GenreclfError, UserWarning):
    """Base class of genreclf's warnings.

    Also a :class:`GenreclfError`, so that a warning turned into an error
    (``warnings.simplefilter("error")``) is caught with the same type.
    """


class DatasetWarning(GenreclfWarning):
    """Files that a loader left out (known-bad, missing, unlabelled)."""


class AudioLoadError(GenreclfError, ValueError):
    """An audio file could not be decoded.

    Parameters
    ----------
    path : str or path-like
        The file that failed.
    reason : str
        What went wrong, in words.

    Attributes
    ----------
    path : str
        The file that failed.
    reason : str
        What went wrong, in words.

    Examples
    --------
    >>> err = AudioLoadError("song.mp3", "empty file (0 bytes)")
    >>> str(err)
    'song.mp3: empty file (0 bytes)'
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, path, reason):
        self.path = os.fspath(path) if path is not None else None
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


class FeatureExtractionError(AudioLoadError):
    """One or more clips could not be decoded; lists every bad file.

    Parameters
    ----------
    failures : dict of str to str
        Path of every bad file -> the reason it failed.
    n_files : int or None, default=None
        Number of distinct files that were asked for, for the message.

    Attributes
    ----------
    failures : dict of str to str
        Path of every bad file -> the reason it failed.
    path : str
        The first bad file.
    reason : str
        The first bad file's reason.

    Examples
    --------
    >>> err = FeatureExtractionError({"a.mp3": "empty file (0 bytes)"}, n_files=3)
    >>> print(err)
    1 of 3 audio files could not be read:
      a.mp3: empty file (0 bytes)
    >>> err.failures
    {'a.mp3': 'empty file (0 bytes)'}
    """

    def __init__(self, failures, n_files=None):
        self.failures = dict(failures)
        self.n_files = n_files
        first = next(iter(self.failures.items()), (None, "no failures"))
        self.path, self.reason = first
        total = "" if n_files is None else f" of {n_files}"
        lines = "\n".join(f"  {p}: {r}" for p, r in self.failures.items())
        ValueError.__init__(
            self,
            f"{len(self.failures)}{total} audio files could not be read:\n{lines}",
        )

    def __reduce__(self):
        return (type(self), (self.failures, self.n_files))


class TrackingServerError(GenreclfError, RuntimeError):
    """The MLflow tracking server (or store) cannot be reached."""


class NoAudioError(GenreclfError, ValueError):
    """No audio file was given where at least one is needed (an empty list)."""


class UsageError(GenreclfError, ValueError):
    """A bad combination of command-line options or settings (exit status 2)."""


class BadRequestError(GenreclfError, ValueError):
    """A request to ``genreclf serve`` that the server cannot read.

    Parameters
    ----------
    message : str
        What is wrong with the request, in words.
    status : int, default=400
        The HTTP status of the answer.
    """

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status

    def __reduce__(self):
        return (type(self), (str(self), self.status))


class DownloadError(GenreclfError, OSError):
    """A download failed (HTTP error, lost connection, incomplete transfer)."""


class ChecksumError(GenreclfError, ValueError):
    """A downloaded file does not match its published checksum."""


class TrainingInterrupted(GenreclfError):
    """Ctrl-C (``SIGINT``) or ``SIGTERM`` during a tracked run.

    Not a ``KeyboardInterrupt``: skorch's ``fit`` swallows those and ends the
    current network's training early, which would then be saved as finished.
    Code of the package that catches ``Exception`` to clean up re-raises it.

    Parameters
    ----------
    signum : int
        The signal received.

    Attributes
    ----------
    signum : int
        The signal received.
    run_id : str or None
        The MLflow run that the interrupt ended (marked KILLED), when it
        happened inside a tracked run; None otherwise.
    """

    def __init__(self, signum):
        self.signum = signum
        self.run_id = None
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    def __reduce__(self):
        return (type(self), (self.signum,))
