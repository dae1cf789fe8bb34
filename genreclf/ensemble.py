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
from numbers import Integral, Real
from pathlib import Path

import joblib
import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import VotingClassifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from genreclf._files import atomic_write
from genreclf._holdout import holdout_split, label_names
from genreclf.exceptions import GenreclfWarning

__all__ = [
    "CALIBRATION_FILE",
    "MANIFEST",
    "MEMBER_GLOB",
    "PREDICTION_PARAMS",
    "GenreEnsemble",
    "member_filename",
]

#: File of a checkpoint folder that records the fit's fingerprint and seeds.
MANIFEST = "ensemble.json"
#: Glob pattern that matches every member file of a checkpoint folder.
MEMBER_GLOB = "member*.joblib"
#: File of a checkpoint folder that holds the calibration net (see ``calibrate``).
CALIBRATION_FILE = "calibration.joblib"
#: Parameters that a fitted net reads when it predicts: ``set_params(net__<name>=...)``
#: also sets them on the fitted members, so a fitted ensemble predicts with them
#: without a refit (for example ``predict_stretch=()``: no tempo views). ``combine``
#: also scores the held-out clips of a net trained with ``monitor="valid_acc"``.
PREDICTION_PARAMS = ("predict_stretch", "combine")


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


#: Lengths of the short excerpts the temperature is also fitted on, as
#: fractions of the net's window (3 s windows: 3 s and 2 s excerpts).
EXCERPT_WINDOWS = (1.0, 2.0 / 3.0)


def _n_windows(X, net):
    """Windows the fitted ``net`` reads in each clip of ``X`` (1: whole clips)."""
    from genreclf.clips import ClipFeatures
    from genreclf.windows import window_index

    window, hop = getattr(net, "window_", None), getattr(net, "hop_", None)
    if isinstance(X, ClipFeatures):
        widths = X.n_frames
    else:
        widths = np.full(len(X), np.shape(X)[-1] if np.ndim(X) > 1 else 1)
    if not window or not hop:
        return np.ones(len(widths), dtype=np.intp)
    return window_index(widths, window, hop)[2]


def _excerpts(clips, window):
    """Yield ``(excerpts, kept)``: the middle of each clip longer than an excerpt.

    For each length of :data:`EXCERPT_WINDOWS`, ``excerpts`` are the middle
    frames of the ``clips`` (a :class:`~genreclf.clips.ClipFeatures`) that
    are longer, ``kept`` their positions in ``clips``. Nothing for dense
    clips or a net without windows: their clips have one width.
    """
    from genreclf.clips import ClipFeatures

    if not isinstance(clips, ClipFeatures) or not window:
        return
    for share in EXCERPT_WINDOWS:
        width = max(1, round(window * share))
        kept = np.flatnonzero(clips.n_frames > width)
        if not len(kept):
            continue
        starts = (clips.n_frames[kept] - width) // 2
        parts = [
            clips.window(i, start, width)[0]
            for i, start in zip(kept, starts, strict=True)
        ]
        excerpts = ClipFeatures(parts)
        excerpts.mel_hz = clips.mel_hz
        yield excerpts, kept


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
        fitting them again. Parameters that training does not read
        (``predict_stretch``; ``combine`` when the net holds no clips out) may
        differ: the reloaded members take the current ones.
    calibrate : bool, default=False
        Temperature-scale the members' probabilities before the soft vote:
        a temperature fitted on held-out clips divides their
        log-probabilities, one for whole clips and one for clips of a single
        window, fitted on excerpts of the held-out clips (see
        ``short_temperature_``). Argmaxes of the members are kept; the
        ensemble's probabilities mean what they say more often (see
        :mod:`genreclf.calibration`). The held-out clips are those each
        member held out of its own training (``valid_size`` of a
        :class:`~genreclf.GenreNet`). Members that train on every clip
        (``valid_size=0``) hold none out: then one more clone of the net, the
        *calibration net*, is fitted with the members' settings on all but
        ``calibration_size`` of the clips, keeping its last epoch as the
        members do, and its predictions of the clips it did not see give the
        temperature. It does not vote and is not kept (its held-out
        predictions are, in ``calibration_``); it costs about one member's
        fit. A net without a ``valid_size`` parameter is left uncalibrated.
    calibration_size : float or int, default=0.2
        The clips the calibration net holds out: a fraction (float in (0,
        1)) or a number of clips (int), stratified by genre. Used only when
        the members hold out no clips of their own.
    split_variants : bool, default=False
        Deal the training clips' production variants (a
        :class:`~genreclf.clips.ClipFeatures` with ``n_variants > 1``, from
        ``MFCCTransformer(augment=K)``) among the members instead of giving
        every member all of them: member ``i`` trains on each clip and its
        variants ``i + 1``, ``i + 1 + n_members``, ... (the calibration net on
        member 0's). With ``augment=K * n_members`` each member sees ``K``
        variants of its own, for ``n_members`` times the extraction (the
        nets' training costs the same), so that the ensemble does not rest
        on one draw of the changes. Needs at least ``n_members`` variants; no
        effect on features without variants. Measured no more accurate than
        shared variants (docs/results.rst, stop 30), hence off.

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
        The temperature of whole clips, fitted on the held-out clips (1.0:
        none; always 1.0 with ``calibrate=False``).
    short_temperature_ : float or None
        The temperature of one-window clips (3 s and shorter with 3 s
        windows), fitted on 3 s and 2 s excerpts from the middle of the
        held-out clips: averaged over many windows, a whole clip's
        probabilities are not over- or under-confident as one window's are.
        A clip of a few windows gets a temperature between the two
        (:func:`~genreclf.calibration.length_temperatures`). None: the nets
        take whole clips, or nothing was calibrated; ``temperature_`` then
        serves every clip.
    long_windows_ : float
        Windows of the held-out whole clips (their median), where
        ``temperature_`` applies in full.
    calibration_ : Bunch or None
        With ``calibrate``: ``y`` (encoded labels), ``proba`` (uncalibrated
        probabilities) and ``windows`` (windows of each) of the held-out
        clips and excerpts the temperatures were fitted on, for a
        reliability diagram, and ``source``: ``"members"`` (the clips the
        members held out) or ``"calibration net"`` (see ``calibrate``); None
        when there were none.
    calibration_seed_ : int or None
        ``random_state`` of the calibration net; None when none was fitted.

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
        "split_variants": ["boolean"],
        "calibration_size": [
            Interval(Real, 0, 1, closed="neither"),
            Interval(Integral, 1, None, closed="left"),
        ],
    }
    # VotingClassifier options that GenreEnsemble fixes.
    weights = None
    flatten_transform = True
    # Models pickled before ``calibrate`` existed load as uncalibrated ones.
    calibrate = False
    calibration_size = 0.2
    temperature_ = 1.0
    short_temperature_ = None
    long_windows_ = 1.0
    calibration_ = None
    calibration_seed_ = None
    split_variants = False

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
        calibration_size=0.2,
        split_variants=False,
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
        self.calibration_size = calibration_size
        self.split_variants = split_variants

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

        The net's parameters that a fitted net reads when it predicts
        (:data:`PREDICTION_PARAMS`: ``net__predict_stretch``,
        ``net__combine``) are checked against the net's constraints and also
        set on the fitted members, so that a fitted ensemble (or a pipeline,
        ``ensemble__net__predict_stretch``) predicts with them at once. The
        temperatures (``calibrate``) stay those fitted with the old values.
        Every other parameter waits for the next :meth:`fit`, as in
        scikit-learn.

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
        now = {
            key[len("net__") :]: value
            for key, value in params.items()
            if key.startswith("net__") and key[len("net__") :] in PREDICTION_PARAMS
        }
        members = getattr(self, "estimators_", None) or ()
        if now and members:  # members predict with them at once: check them first
            now = self._checked_net_values(now)
        BaseEstimator.set_params(self, **params)
        if now:
            for member in members:
                member.set_params(**now)
        return self

    def _checked_net_values(self, values):
        """Return ``{name: value}`` of the net checked against its constraints.

        Lists become tuples, so that members never share a caller's list.
        """
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        net = self._template()
        constraints = getattr(net, "_parameter_constraints", {})
        validate_parameter_constraints(
            {k: constraints[k] for k in values if k in constraints},
            values,
            caller_name=type(net).__name__,
        )
        return values

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
    def _draw_seeds(self, extra=0):
        """``n_members`` distinct seeds, then ``extra`` more (same first ones)."""
        rng = check_random_state(self.random_state)
        seeds = []
        while len(seeds) < self.n_members + extra:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            if seed not in seeds:
                seeds.append(seed)
        return seeds

    def _prediction_only(self):
        """Return the net's parameters that its training never reads, checked.

        For a :class:`~genreclf.GenreNet` (other nets: none): ``predict_stretch``
        always; ``combine`` too when the net holds no clips out
        (``valid_size=0``), since held-out clips are scored with it (their
        accuracy can choose the epoch or feed a callback). A resumed fit
        reuses members saved with other values of these and gives them the
        current ones, checked first (lists become tuples).
        """
        from genreclf.model import GenreNet

        net = self._template()
        if not isinstance(net, GenreNet):
            return {}
        params = net.get_params(deep=False)
        names = ["predict_stretch"]
        if not params.get("valid_size"):
            names.append("combine")
        return self._checked_net_values(
            {name: params[name] for name in names if name in params}
        )

    def _fingerprint(self, X, y, prediction_only):
        params = clone(self._template()).get_params(deep=False)
        params.pop("random_state", None)
        for name in prediction_only:
            params.pop(name)
        template = type(self._template())
        key = (template.__module__, template.__qualname__, params, self.n_members)
        if self.split_variants:  # other variants per member: other members
            key += ("split_variants",)
        return joblib.hash((*key, X, y))

    def _checkpoint_path(self, index):
        name = CALIBRATION_FILE if index == "calibration" else member_filename(index)
        return Path(self.checkpoint_dir) / name

    def _load_checkpoint(self, index, fingerprint, seed, prediction_only):
        """The estimator saved for ``index`` (or ``"calibration"``), or None.

        It takes the current ``prediction_only`` values (see
        :meth:`_prediction_only`).
        """
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
        estimator = saved["estimator"]
        if prediction_only and hasattr(estimator, "set_params"):
            estimator.set_params(**prediction_only)
        return estimator

    def _prepare_checkpoints(self, X, y, seeds, prediction_only):
        """Create the folder, reuse its seeds when resuming; return the fingerprint.

        ``seeds`` are the members' seeds, then the calibration net's if any;
        ``prediction_only`` the net's values that the fingerprint leaves out.
        """
        folder = Path(self.checkpoint_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"checkpoint_dir {folder} cannot be created: {exc}") from exc
        fingerprint = self._fingerprint(X, y, prediction_only)
        manifest = folder / MANIFEST
        if self.resume and self.random_state is None and manifest.is_file():
            try:
                saved = json.loads(manifest.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("fingerprint") == fingerprint:
                if len(saved.get("seeds", ())) == self.n_members:
                    seeds[: self.n_members] = [int(s) for s in saved["seeds"]]
                extra = saved.get("calibration_seed")
                if len(seeds) > self.n_members and extra is not None:
                    seeds[self.n_members] = int(extra)
        record = {"fingerprint": fingerprint, "seeds": seeds[: self.n_members]}
        if len(seeds) > self.n_members:
            record["calibration_seed"] = seeds[self.n_members]
        record = json.dumps(record)
        try:  # before any training: an unwritable folder fails fast
            with atomic_write(manifest, "w") as f:
                f.write(record)
        except OSError as exc:
            raise OSError(f"checkpoint_dir {folder} is not writable: {exc}") from exc
        return fingerprint

    def _calibration_net(self, seed):
        """The unfitted calibration net (see ``calibrate``)."""
        net = self._member(seed)
        params = net.get_params(deep=False)
        changes = {"valid_size": self.calibration_size}
        if "monitor" in params:  # the members keep their last epoch: so does it
            changes["monitor"] = "last"
        if "progress_label" in params and params["progress_label"] is None:
            changes["progress_label"] = "calibration net"
        return net.set_params(**changes)

    def _needs_calibration_net(self):
        """Whether ``calibrate`` asks for a calibration net: members hold none out."""
        if not self.calibrate or self.voting != "soft":
            return False
        params = self._template().get_params(deep=False)
        return "valid_size" in params and not params["valid_size"]

    def _variant_shares(self, X):
        """Each member's variants of ``X`` (see ``split_variants``), or None."""
        n_variants = getattr(X, "n_variants", 1)
        if not self.split_variants or n_variants <= 1:
            return None
        extra = n_variants - 1
        if extra < self.n_members:
            raise ValueError(
                f"split_variants deals the clips' variants among {self.n_members} "
                f"members, but the training features hold {extra} variant(s) per "
                f"clip: set augment to a multiple of n_members (for example "
                f"augment={self.n_members * max(1, extra)}) or split_variants=False"
            )
        extras = np.arange(1, n_variants)
        return [extras[i :: self.n_members] for i in range(self.n_members)]

    @staticmethod
    def _member_input(X, index, shares):
        """Return what member ``index`` (or ``"calibration"``) trains on.

        ``shares`` are :meth:`_variant_shares` of ``X``, found once per fit.
        """
        if shares is None:
            return X
        return X.select_variants(shares[0 if index == "calibration" else index])

    def _fit_all(self, X, y, todo, fit_params):
        """Yield ``(index, member, seconds)`` in index order as members finish.

        ``todo`` holds member indices, and ``"calibration"`` for the
        calibration net (fitted last, or beside the members with ``n_jobs``).
        """
        jobs = []
        for i in todo:
            if i == "calibration":
                jobs.append((i, self._calibration_net(self.calibration_seed_)))
                continue
            member = self._member(self.seeds_[i])
            params = member.get_params(deep=False)
            if "progress_label" in params and params["progress_label"] is None:
                # the net's epoch lines say which member it is
                member.set_params(progress_label=f"member {i + 1}/{self.n_members}")
            jobs.append((i, member))
        names = self.classes_
        shares = self._variant_shares(X)
        inputs = [self._member_input(X, i, shares) for i, _ in jobs]
        if self.n_jobs is None or self.n_jobs == 1:
            for (i, member), data in zip(jobs, inputs, strict=True):
                yield (i, *_fit_member(member, data, y, fit_params, names))
            return
        results = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_fit_member)(member, data, y, fit_params, names)
            for (_, member), data in zip(jobs, inputs, strict=True)
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
        calibration_net = self._needs_calibration_net()
        seeds = self._draw_seeds(extra=int(calibration_net))
        fingerprint, prediction_only = None, {}
        if self.checkpoint_dir is not None:
            prediction_only = self._prediction_only()
            fingerprint = self._prepare_checkpoints(X, y_enc, seeds, prediction_only)
        self.seeds_ = seeds[: self.n_members]
        self.calibration_seed_ = seeds[self.n_members] if calibration_net else None
        members = [None] * self.n_members
        self.fit_times_ = [0.0] * self.n_members
        self.resumed_ = []
        self.temperature_, self.calibration_ = 1.0, None
        self.short_temperature_, self.long_windows_ = None, 1.0
        todo, calibrator = [], None
        keys = list(range(self.n_members)) + ["calibration"] * calibration_net
        for i, seed in zip(keys, seeds, strict=True):
            loaded = None
            if self.resume and fingerprint is not None:
                loaded = self._load_checkpoint(i, fingerprint, seed, prediction_only)
            if i == "calibration" and loaded is not None:  # held out what we ask?
                if loaded.get_params().get("valid_size") != self.calibration_size:
                    loaded = None
            if loaded is None:
                todo.append(i)
            elif i == "calibration":
                calibrator = loaded
                self._say("the calibration net reloaded from checkpoint_dir")
            else:
                members[i] = loaded
                self.resumed_.append(i)
                self._finished(i, loaded, "reloaded from checkpoint_dir")
        for i, member, seconds in self._fit_all(X, y_enc, todo, fit_params):
            if fingerprint is not None:
                saved = {
                    "fingerprint": fingerprint,
                    "seed": seeds[self.n_members if i == "calibration" else i],
                    "estimator": member,
                }
                with atomic_write(self._checkpoint_path(i)) as f:
                    joblib.dump(saved, f)
            if i == "calibration":
                calibrator = member
                self._say(f"the calibration net fitted in {seconds:.1f} s")
                continue
            members[i] = member
            self.fit_times_[i] = seconds
            self._finished(i, member, f"fitted in {seconds:.1f} s")
        self.estimators_ = members
        self.named_estimators_ = Bunch(
            **{f"member{i}": member for i, member in enumerate(members)}
        )
        if hasattr(members[0], "feature_names_in_"):
            self.feature_names_in_ = members[0].feature_names_in_
        if calibrator is not None:
            self._fit_temperature(X, y_enc, [calibrator], "calibration net")
        elif self.calibrate and self.voting == "soft":
            self._fit_temperature(X, y_enc, members, "members")
        return self

    def _fit_temperature(self, X, y_enc, nets, source):
        """Fit the temperatures on the clips ``nets`` held out of their fits."""
        from genreclf.calibration import fit_temperature

        probas, labels, windows = [], [], []
        for net in nets:
            valid_size = getattr(net, "valid_size", None)
            seed = getattr(net, "seed_", None)
            if not valid_size or seed is None:
                continue
            with warnings.catch_warnings():  # the net's fit has warned
                warnings.simplefilter("ignore", GenreclfWarning)
                _, valid = holdout_split(y_enc, valid_size, seed, names=self.classes_)
            if not len(valid):
                continue
            held_out = X.take(valid, axis=0) if hasattr(X, "take") else X[valid]
            probas.append(np.asarray(net.predict_proba(held_out), np.float64))
            labels.append(np.asarray(y_enc)[valid])
            windows.append(_n_windows(held_out, net))
            for excerpts, kept in _excerpts(held_out, getattr(net, "window", None)):
                probas.append(np.asarray(net.predict_proba(excerpts), np.float64))
                labels.append(np.asarray(y_enc)[valid][kept])
                windows.append(np.ones(len(kept), dtype=np.intp))
        if not probas:
            return
        proba, y_held = np.concatenate(probas), np.concatenate(labels)
        n_windows = np.concatenate(windows)
        # whole clips of several windows, and one-window clips and excerpts
        many = n_windows > 1
        if many.any() and not many.all():
            self.temperature_ = fit_temperature(proba[many], y_held[many])
            self.short_temperature_ = fit_temperature(proba[~many], y_held[~many])
            self.long_windows_ = float(np.median(n_windows[many]))
        else:
            self.temperature_ = fit_temperature(proba, y_held)
        self.calibration_ = Bunch(
            y=y_held, proba=proba, windows=n_windows, source=source
        )

    def clip_temperatures(self, n_windows):
        """The temperature of clips of ``n_windows`` windows (see ``calibrate``).

        Parameters
        ----------
        n_windows : array-like of int, shape (n_clips,)
            Windows of each clip (1: one window or less).

        Returns
        -------
        temperatures : ndarray of shape (n_clips,), float64
            ``short_temperature_`` for one window, ``temperature_`` from
            ``long_windows_`` windows, in between for clips in between.
        """
        from genreclf.calibration import length_temperatures

        n_windows = np.asarray(n_windows)
        long = float(getattr(self, "temperature_", 1.0))
        short = getattr(self, "short_temperature_", None)
        if short is None:
            return np.full(n_windows.shape, long)
        return length_temperatures(n_windows, short, long, self.long_windows_)

    def _collect_probas(self, X):
        """The members' probabilities, temperature-scaled (see ``calibrate``)."""
        probas = super()._collect_probas(X)
        temperature = getattr(self, "temperature_", 1.0)
        short = getattr(self, "short_temperature_", None)
        if temperature == 1.0 and short in (None, 1.0):
            return probas
        from genreclf.calibration import apply_temperature

        if short is not None:
            temperature = self.clip_temperatures(_n_windows(X, self.estimators_[0]))
        return np.asarray([apply_temperature(p, temperature) for p in probas])

    def _say(self, what):
        if self.verbose:
            print(f"[GenreEnsemble] {what}")

    def _finished(self, index, member, what):
        self._say(f"member {index + 1} of {self.n_members} {what}")
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
