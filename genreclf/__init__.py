"""genreclf: music-genre classification from audio files.

Audio paths go in, genre names come out, through one scikit-learn ``Pipeline``:
decoding and MFCCs (cached on disk), per-coefficient standardization, and a
``VotingClassifier`` of five skorch CNNs. Training is tracked in MLflow.

Public names are imported lazily, so ``import genreclf`` stays cheap (torch and
mlflow load only when a name that needs them is first used). Every error and
warning of the package derives from :class:`genreclf.GenreclfError`.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load_audio": "genreclf.audio",
    "ClipFeatures": "genreclf.clips",
    "MFCCTransformer": "genreclf.features",
    "MFCCStandardizer": "genreclf.features",
    "check_files": "genreclf.features",
    "GENRES": "genreclf.datasets",
    "load_fma": "genreclf.datasets",
    "load_folder": "genreclf.datasets",
    "make_synthetic": "genreclf.synthetic",
    "download_fma": "genreclf.download",
    "GenreCNN": "genreclf.model",
    "GenreNet": "genreclf.model",
    "GenreEnsemble": "genreclf.ensemble",
    "build_pipeline": "genreclf.pipeline",
    # every error and warning, catchable as genreclf.GenreclfError
    "AudioLoadError": "genreclf.exceptions",
    "BadRequestError": "genreclf.exceptions",
    "ChecksumError": "genreclf.exceptions",
    "DatasetWarning": "genreclf.exceptions",
    "DownloadError": "genreclf.exceptions",
    "FeatureExtractionError": "genreclf.exceptions",
    "GenreclfError": "genreclf.exceptions",
    "GenreclfWarning": "genreclf.exceptions",
    "NoAudioError": "genreclf.exceptions",
    "TrackingServerError": "genreclf.exceptions",
    "TrainingInterrupted": "genreclf.exceptions",
    "UsageError": "genreclf.exceptions",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'genreclf' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
