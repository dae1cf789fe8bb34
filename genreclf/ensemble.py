"""Five fits of one net, soft-voted: a thin :class:`~sklearn.ensemble.VotingClassifier`.

:class:`GenreEnsemble` derives its members from one ``net`` and one
``random_state``, so a grid search sets every member with one parameter path
(``ensemble__net__batch_size``). Members are fitted one after the other; a
callback sees each as it finishes, and a checkpoint folder lets an
interrupted fit resume from the members it had finished.
"""

import json
import os
import time
import warnings
from numbers import Integral
from pathlib import Path

import joblib
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import VotingClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from genreclf._files import atomic_write
from genreclf._holdout import holdout_split, label_names
from genreclf.exceptions import GenreclfWarning

__all__ = ["MANIFEST", "MEMBER_GLOB", "GenreEnsemble", "member_filename"]

#: File of a checkpoint folder that records the fit's fingerprint and seeds.
MANIFEST = "ensemble.json"
#: Glob pattern that matches every member file of a checkpoint folder.
MEMBER_GLOB = "member*.joblib"


def member_filename(index):
    """Name of member ``index``'s file in a checkpoint folder.

    Parameters
    ----------
    index : int
        Position of the member (0-based).

    Returns
    -------
    name : str

    Examples
    --------
    >>> member_filename(2)
    'member2.joblib'
    """
    return f"member{int(index)}.joblib"


def _fit_member(member, X, y, fit_params, names=None):
    """Fit one member (module level, so joblib workers can run it).

    ``names`` are the genres of the encoded labels ``y``, for the member's
    warnings (see :func:`genreclf._holdout.label_names`).
    """
    start = time.perf_counter()
    with label_names(names):
        member.fit(X, y, **fit_params)
    return member, time.perf_counter() - start


class GenreEnsemble(VotingClassifier):
    """Soft-voting ensemble of ``n_members`` fits of one net with different seeds.

    A :class:`~sklearn.ensemble.VotingClassifier` whose ``estimators`` are
    derived: ``n_members`` clones of ``net``, each with its own
    ``random_state`` drawn from this ensemble's ``random_state``. Its
    parameters are those of a plain estimator, so ``net__batch_size`` (or
    ``ensemble__net__batch_size`` inside a pipeline) sets every member.

    Parameters
    ----------
    net : estimator or None, default=None
        The member template, a classifier with a ``random_state`` parameter;
        None means ``GenreNet()``.
    n_members : int, default=5
        Number of members (the study's five).
    voting : {"soft", "hard"}, default="soft"
        Average the members' probabilities, or take a majority of labels.
    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds (distinct ints). The same int gives the same
        members, hence the same predictions on the CPU.
    n_jobs : int or None, default=None
        Members fitted in parallel processes; None fits them one after the
        other. Keep None when the net itself uses every core or the GPU
        (parallelise at one level only).
    verbose : bool, default=False
        Print a line as each member finishes.
    member_callback : callable or None, default=None
        Called as ``member_callback(index, member, seed)`` in this process
        after each member is fitted (or reloaded, see ``resume``), in index
        order, e.g. to log or save it.
    checkpoint_dir : str, path-like or None, default=None
        Folder where each member is saved (joblib) as soon as it is fitted.
    resume : bool, default=False
        With ``checkpoint_dir``: reload the members already saved there by
        a fit of the same net parameters on the same data (and the same seeds,
        taken from the folder when ``random_state`` is None) instead of
        fitting them again.
    calibrate : bool, default=False
        Temperature-scale the members' probabilities before the soft vote:
        one temperature, fitted on the clips each member held out of its own
        training (``valid_size`` of a :class:`~genreclf.GenreNet`), divides
        their log-probabilities. Argmaxes of the members are kept; the
        ensemble's probabilities mean what they say more often (see
        :mod:`genreclf.calibration`). Without held-out clips nothing changes.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members (trained on integer-encoded labels, see ``le_``).
    named_estimators_ : Bunch
        The members by name, ``member0`` ... ``member<n-1>``.
    seeds_ : list of int
        The members' ``random_state``, in order.
    resumed_ : list of int
        Indices of the members reloaded from ``checkpoint_dir``.
    fit_times_ : list of float
        Seconds each member took to fit (0.0 for reloaded ones).
    le_ : LabelEncoder
        Encodes the labels for the members.
    classes_ : ndarray of shape (n_classes,)
        The labels (genre names).
    temperature_ : float
        The temperature applied to every member (1.0: none; always 1.0 with
        ``calibrate=False``).
    calibration_ : Bunch or None
        With ``calibrate``: ``y`` (encoded labels) and ``proba`` (the members'
        uncalibrated probabilities) of the held-out clips the temperature was
        fitted on, for a reliability diagram; None when there were none.

    See Also
    --------
    genreclf.GenreNet : The default member.
    sklearn.ensemble.VotingClassifier : The parent class.

    Notes
    -----
    A checkpoint file is a pickle: loading one runs code, so resume only from
    folders you wrote yourself. A checkpoint folder belongs to one training;
    a grid search should not share one across candidates.

    Examples
    --------
    >>> import numpy as np
    >>> from genreclf.model import GenreNet
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(12, 1, 20, 16)).astype("float32")
    >>> y = np.array(["rock", "jazz"] * 6)
    >>> net = GenreNet(module__filters=(4,), module__dense=8, max_epochs=1)
    >>> ens = GenreEnsemble(net, n_members=2, random_state=0).fit(X, y)
    >>> len(ens.estimators_), ens.seeds_[0] != ens.seeds_[1]
    (2, True)
    >>> ens.set_params(net__batch_size=4).net.batch_size
    4
    """

    # VotingClassifier's constraints of the options kept, plus GenreEnsemble's.
    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in VotingClassifier._parameter_constraints.items()
            if name in ("voting", "n_jobs", "verbose")
        },
        "net": [HasMethods(["fit", "predict"]), None],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "member_callback": [callable, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume": ["boolean"],
        "calibrate": ["boolean"],
    }
    # VotingClassifier options that GenreEnsemble fixes.
    weights = None
    flatten_transform = True
    # Models pickled before ``calibrate`` existed load as uncalibrated ones.
    calibrate = False
    temperature_ = 1.0
    calibration_ = None

    def __init__(
        self,
        net=None,
        n_members=5,
        voting="soft",
        random_state=None,
        n_jobs=None,
        verbose=False,
        member_callback=None,
        checkpoint_dir=None,
        resume=False,
        calibrate=False,
    ):
        self.net = net
        self.n_members = n_members
        self.voting = voting
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.member_callback = member_callback
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.calibrate = calibrate

    # --- parameters: a plain estimator's, not VotingClassifier's ------------
    def get_params(self, deep=True):
        """Get the parameters (``net__*`` reach the member template).

        Parameters
        ----------
        deep : bool, default=True
            Include the net's parameters as ``net__<name>``.

        Returns
        -------
        params : dict
        """
        return BaseEstimator.get_params(self, deep=deep)

    def set_params(self, **params):
        """Set parameters; ``net__<name>`` sets it on every member.

        Parameters
        ----------
        **params : dict
            Parameter names as in :meth:`get_params`.

        Returns
        -------
        self : GenreEnsemble
        """
        if self.net is None and any(key.startswith("net__") for key in params):
            self.net = self._template()
        return BaseEstimator.set_params(self, **params)

    def _template(self):
        if self.net is not None:
            return self.net
        from genreclf.model import GenreNet

        return GenreNet()

    def _member(self, seed):
        member = clone(self._template())
        if seed is not None:
            member.set_params(random_state=seed)
        return member

    @property
    def estimators(self):
        """The ``(name, unfitted member)`` pairs this ensemble fits."""
        seeds = getattr(self, "seeds_", None) or [None] * self.n_members
        return [(f"member{i}", self._member(s)) for i, s in enumerate(seeds)]

    # --- fitting ------------------------------------------------------------
    def _draw_seeds(self):
        rng = check_random_state(self.random_state)
        seeds = []
        while len(seeds) < self.n_members:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            if seed not in seeds:
                seeds.append(seed)
        return seeds

    def _fingerprint(self, X, y):
        params = clone(self._template()).get_params(deep=False)
        params.pop("random_state", None)
        template = type(self._template())
        return joblib.hash(
            (template.__module__, template.__qualname__, params, self.n_members, X, y)
        )

    def _checkpoint_path(self, index):
        return Path(self.checkpoint_dir) / member_filename(index)

    def _load_checkpoint(self, index, fingerprint, seed):
        path = self._checkpoint_path(index)
        if not path.is_file():
            return None
        try:
            saved = joblib.load(path)
        except Exception:  # a truncated or foreign file: fit the member again
            return None
        if (
            not isinstance(saved, dict)
            or saved.get("fingerprint") != fingerprint
            or saved.get("seed") != seed
        ):
            return None
        return saved["estimator"]

    def _prepare_checkpoints(self, X, y, seeds):
        """Create the folder, reuse its seeds when resuming; return the fingerprint."""
        folder = Path(self.checkpoint_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"checkpoint_dir {folder} cannot be created: {exc}") from exc
        fingerprint = self._fingerprint(X, y)
        manifest = folder / MANIFEST
        if self.resume and self.random_state is None and manifest.is_file():
            try:
                saved = json.loads(manifest.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("fingerprint") == fingerprint:
                if len(saved.get("seeds", ())) == self.n_members:
                    seeds[:] = [int(s) for s in saved["seeds"]]
        record = json.dumps({"fingerprint": fingerprint, "seeds": seeds})
        try:  # before any training: an unwritable folder fails fast
            with atomic_write(manifest, "w") as f:
                f.write(record)
        except OSError as exc:
            raise OSError(f"checkpoint_dir {folder} is not writable: {exc}") from exc
        return fingerprint

    def _fit_all(self, X, y, todo, fit_params):
        """Yield ``(index, member, seconds)`` in index order as members finish."""
        jobs = [(i, self._member(self.seeds_[i])) for i in todo]
        for i, member in jobs:  # the net's epoch lines say which member it is
            params = member.get_params(deep=False)
            if "progress_label" in params and params["progress_label"] is None:
                member.set_params(progress_label=f"member {i + 1}/{self.n_members}")
        names = self.classes_
        if self.n_jobs is None or self.n_jobs == 1:
            for i, member in jobs:
                yield (i, *_fit_member(member, X, y, fit_params, names))
            return
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_fit_member)(member, X, y, fit_params, names)
            for _, member in jobs
        )
        for (i, _), (member, seconds) in zip(jobs, results, strict=True):
            yield i, member, seconds

    def fit(self, X, y, **fit_params):
        """Fit ``n_members`` clones of ``net``, each with its own seed.

        Parameters
        ----------
        X : array-like
            Training input of the net, e.g. MFCCs of shape
            (n_clips, 1, n_mfcc, n_frames).
        y : array-like of shape (n_clips,)
            Labels, e.g. genre names.
        **fit_params : dict
            Passed to every member's ``fit``.

        Returns
        -------
        self : GenreEnsemble
        """
        self._validate_params()
        y_type = type_of_target(y, input_name="y")
        if y_type in ("unknown", "continuous"):
            raise ValueError(
                f"Unknown label type: {y_type}. GenreEnsemble needs class labels "
                "(e.g. genre names)"
            )
        if y_type not in ("binary", "multiclass"):
            raise ValueError(
                f"GenreEnsemble supports binary or multiclass labels, got {y_type}"
            )
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        y_enc = self.le_.transform(y)
        seeds = self._draw_seeds()
        fingerprint = None
        if self.checkpoint_dir is not None:
            fingerprint = self._prepare_checkpoints(X, y_enc, seeds)
        self.seeds_ = seeds
        members = [None] * self.n_members
        self.fit_times_ = [0.0] * self.n_members
        self.resumed_ = []
        todo = []
        for i, seed in enumerate(seeds):
            loaded = None
            if self.resume and fingerprint is not None:
                loaded = self._load_checkpoint(i, fingerprint, seed)
            if loaded is None:
                todo.append(i)
                continue
            members[i] = loaded
            self.resumed_.append(i)
            self._finished(i, loaded, "reloaded from checkpoint_dir")
        for i, member, seconds in self._fit_all(X, y_enc, todo, fit_params):
            members[i] = member
            self.fit_times_[i] = seconds
            if fingerprint is not None:
                saved = {
                    "fingerprint": fingerprint,
                    "seed": seeds[i],
                    "estimator": member,
                }
                with atomic_write(self._checkpoint_path(i)) as f:
                    joblib.dump(saved, f)
            self._finished(i, member, f"fitted in {seconds:.1f} s")
        self.estimators_ = members
        self.named_estimators_ = Bunch(
            **{f"member{i}": member for i, member in enumerate(members)}
        )
        if hasattr(members[0], "feature_names_in_"):
            self.feature_names_in_ = members[0].feature_names_in_
        self.temperature_, self.calibration_ = 1.0, None
        if self.calibrate and self.voting == "soft":
            self._fit_temperature(X, y_enc)
        return self

    def _fit_temperature(self, X, y_enc):
        """Fit ``temperature_`` on the clips each member held out of its fit."""
        from genreclf.calibration import fit_temperature

        probas, labels = [], []
        for member in self.estimators_:
            valid_size = getattr(member, "valid_size", None)
            seed = getattr(member, "seed_", None)
            if not valid_size or seed is None:
                continue
            with warnings.catch_warnings():  # the member's fit has warned
                warnings.simplefilter("ignore", GenreclfWarning)
                _, valid = holdout_split(y_enc, valid_size, seed, names=self.classes_)
            if not len(valid):
                continue
            held_out = X.take(valid, axis=0) if hasattr(X, "take") else X[valid]
            probas.append(np.asarray(member.predict_proba(held_out), np.float64))
            labels.append(np.asarray(y_enc)[valid])
        if not probas:
            return
        proba, y_held = np.concatenate(probas), np.concatenate(labels)
        self.temperature_ = fit_temperature(proba, y_held)
        self.calibration_ = Bunch(y=y_held, proba=proba)

    def _collect_probas(self, X):
        """The members' probabilities, temperature-scaled (see ``calibrate``)."""
        probas = super()._collect_probas(X)
        temperature = getattr(self, "temperature_", 1.0)
        if temperature == 1.0:
            return probas
        from genreclf.calibration import apply_temperature

        return np.asarray([apply_temperature(p, temperature) for p in probas])

    def _finished(self, index, member, what):
        if self.verbose:
            print(f"[GenreEnsemble] member {index + 1} of {self.n_members} {what}")
        if self.member_callback is not None:
            self.member_callback(index, member, self.seeds_[index])

    def score_members(self, X, y):
        """Accuracy of each member alone, to compare with the ensemble's.

        Parameters
        ----------
        X : array-like
            Input of the members.
        y : array-like of shape (n_samples,)
            True labels.

        Returns
        -------
        scores : ndarray of shape (n_members,)
            Accuracy of each member, in order.
        """
        check_is_fitted(self)
        y_enc = self.le_.transform(y)
        return np.array([np.mean(m.predict(X) == y_enc) for m in self.estimators_])
