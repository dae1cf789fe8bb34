"""The skorch classifier :class:`GenreNet`: the CNN trained with ``random_state``.

:class:`GenreNet` trains :class:`~genreclf.cnn.GenreCNN` the reference
study's way (RMSprop, cross-entropy, L2 on the second block, batch size 5),
keeps the best epoch on a stratified held-out part, and can vote fixed-width
windows over the real frames of each clip (slice voting,
:mod:`genreclf.windows`), in float32 or mixed precision. The torch modules
live in :mod:`genreclf.cnn`; they are imported here as well, because pickled
and MLflow-logged models name ``genreclf.model.GenreCNN``.
"""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier
from torch import nn

from genreclf._loop import WindowLoopMixin
from genreclf._net_input import NetInputMixin
from genreclf._training import (
    DEPRECATED_AUGMENTATIONS,
    PRECISIONS,
    AutoDeviceMixin,
    accepts,
    check_device,
    check_precision,
    default_callbacks,
    genre_names,
    holdout_split,
)
from genreclf._window_dataset import stretch_windows
from genreclf.cnn import ConvBlock, GenreCNN, input_stats
from genreclf.windows import (
    COMBINE_RULES,
    WINDOW_AUGMENTATIONS,
    WindowDataset,
    vote_windows,
)

__all__ = ["DEPRECATED_AUGMENTATIONS", "GenreCNN", "GenreNet", "STUDY_PARAM_GROUPS"]

# The names that models pickled before genreclf.cnn existed refer to.
_ConvBlock = ConvBlock
_input_stats = input_stats

#: ``optimizer__param_groups`` of the study: L2 weight decay 1e-3 on the two
#: convolution kernels of the second block only.
STUDY_PARAM_GROUPS = (("blocks.1.conv*.weight", {"weight_decay": 1e-3}),)


class GenreNet(AutoDeviceMixin, NetInputMixin, WindowLoopMixin, NeuralNetClassifier):
    """The CNN as a scikit-learn classifier, trained the reference study's way.

    One sample is one clip of MFCCs: a row of a dense array (clips of equal
    width) or a clip of a :class:`~genreclf.clips.ClipFeatures` (clips of
    their own widths). By default the whole clip is one input of the net
    (the study); with ``window`` the net sees fixed-width windows over each
    clip's real frames (random crops or every window during training) and
    the windows' probabilities are combined per clip at prediction (slice
    voting). Each fit keeps the module's parameters of its best epoch on a
    stratified held-out part of the training clips.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=GenreCNN
        The network. For a class, ``n_classes``, ``n_mfcc``, ``n_frames``
        (the window width) and ``in_channels`` are taken from the training
        data unless set with ``module__*``; other options are set with
        ``module__filters``, ``module__dense``, ``module__batch_norm``,
        ``module__dropout``, ``module__head``, ``module__input_stats``.
    criterion : torch criterion class, default=torch.nn.CrossEntropyLoss
        Loss on the logits.
    optimizer : torch optimizer class, default=torch.optim.RMSprop
        Optimizer, as in the study.
    lr : float, default=1e-4
        Learning rate (RMSprop's usual 1e-3 left the study's network at
        chance on real music here, whole clips and 3 s windows alike).
    max_epochs : int, default=20
        Epochs per fit; the best epoch on the held-out part is kept.
    lr_schedule : {"constant", "cosine"}, default="constant"
        ``"cosine"`` lowers the learning rate from ``lr`` to 0 along half a
        cosine over ``max_epochs`` (skorch's ``LRScheduler`` with torch's
        ``CosineAnnealingLR``, stepped once per epoch), so that the last
        epochs settle instead of moving at full speed. Measured less accurate
        on 3 s excerpts than a constant rate (docs/results.rst, stop 30).
    average_last : int, default=0
        Above 1: the net ends with the mean of its parameters (and batch-norm
        statistics) over its last ``average_last`` epochs instead of the last
        epoch's (weight averaging, see ``genreclf._callbacks.WeightAverage``).
        Only for nets that keep their last epoch (``valid_size=0`` or
        ``monitor="last"``). Measured less accurate on 3 s excerpts than the
        last epoch (docs/results.rst, stop 30).
    batch_size : int, default=5
        Training mini-batch size (the study's 5).
    valid_size : float, int or None, default=0.2
        Held-out part used to choose the best epoch: a fraction of the clips
        (float) or a number of clips (int); 0 or None trains on every clip
        and keeps the last epoch. Stratified by genre (see Notes).
    monitor : {"valid_loss", "valid_acc", "last"}, default="valid_loss"
        Score on the held-out part that chooses the best epoch; ``"last"``
        keeps the last epoch and only scores the held-out part each epoch
        (the calibration net of a :class:`~genreclf.GenreEnsemble` trains so).
    window : int or None, default=None
        Width of the net's input in frames (about 43 frames per second at
        22050 Hz and hop_length 512: 129 frames is 3 s). None: the whole
        clip, as wide as the training clips (the widest, for ClipFeatures).
    window_hop : int or None, default=None
        Frames between windows at prediction, for validation and for
        ``train_windows="all"``. None: half a window.
    train_windows : {"random", "all"}, default="random"
        ``"random"``: each epoch, one random window of the real frames of
        every training clip. ``"all"``: every real window of each clip
        (``window_hop`` apart; one for a clip shorter than the window) is a
        training sample, weighted ``1 / n_windows`` of its clip (scaled to a
        mean weight of 1), so every clip weighs the same in the loss
        whatever its length.
    combine : {"mean", "logmean", "vote"}, default="mean"
        How :meth:`predict_proba` combines the windows of a clip: mean of
        probabilities, normalised mean of log-probabilities, or the fraction
        of windows voting for each class.
    time_stretch : float, default=0.0
        Training augmentation: half of the training windows are each
        stretched in time by a factor of their own drawn from ``[1 -
        time_stretch, 1 + time_stretch]`` (linear interpolation of their
        frames, the width kept), as a phase-vocoder tempo change does; the
        others are left as they are (see ``WindowDataset``).
    tilt_shift : float, default=0.0
        Training augmentation: every training window gets its own spectral
        tilt EQ, uniform in ``[-tilt_shift, tilt_shift]`` dB/octave about
        1 kHz, applied to its MFCCs through the mel levels they describe
        (``genreclf.windows.change_windows``), fresh every epoch, for about
        12 ms of CPU per mini-batch of 32. Needs a ``ClipFeatures`` from
        ``MFCCTransformer(duration=None)`` (it knows the mel bands).
    noise_snr : float, default=0.0
        Training augmentation (0: off): half of the training windows get
        white noise at an SNR uniform in ``[noise_snr, noise_snr + 20]`` dB,
        added likewise through the mel levels. Needs the same features.
    short_excerpts : float, default=0.0
        Training augmentation (0: off): this share of the training windows
        is cut to its first 1.5-3 s (half a window to a whole one, uniform)
        and repeated to fill the window, as a clip shorter than one window
        is at prediction, so that the net learns what a 2 s excerpt looks
        like (see ``WindowDataset``).
    predict_stretch : tuple of float, default=()
        Test-time tempo changes: each window is also predicted stretched in
        time by each of these factors, e.g. ``(0.94, 1.06)``: its frames
        are interpolated linearly in time, as in ``time_stretch``, but the
        view's width changes with the factor (``time_stretch`` keeps the
        window's width), and its log-probabilities are averaged over the
        views before the windows of a clip are combined. Costs one more pass
        of the net per factor.
        Needs ``module__head="global"``.
    consistency : float, default=0.0
        Consistency training (0: off): each training mini-batch is read
        twice, the same windows with their own draws of the augmentation
        (production variant, tilt, noise, stretch), both views are trained
        on, and this many times the Jensen-Shannon divergence of the net's
        two answers is added to the loss, so that the net learns to give
        one window the same answer however it was produced. Doubles the
        work per epoch. Needs variants (``MFCCTransformer(augment=K)``) or
        an on-the-fly augmentation, and ``mixup=0``.
    time_shift, time_mask, freq_mask : int, default=0
        Deprecated since 0.2, removed in 0.3 (``FutureWarning`` when not 0):
        a circular shift of up to ``time_shift`` frames, and one zeroed band
        of up to ``time_mask`` frames and one of up to ``freq_mask`` MFCCs.
    c0_shift, mixup : float, default=0.0
        Deprecated likewise: a uniform draw from ``[-c0_shift, c0_shift]``
        added to c0; a blend of each mini-batch (and its loss) with a
        shuffled copy, ``lam`` drawn from Beta(mixup, mixup) (measured worse).
    device : str or torch.device, default="auto"
        ``"auto"``: ``"cuda"`` when available, else ``"cpu"`` (decided on
        use, so a net pickled on a GPU machine runs on a CPU-only one). A
        CUDA device on a machine without one is refused at :meth:`fit`.
    precision : {"fp32", "bf16", "fp16"}, default="fp32"
        Arithmetic of training and prediction: float32, or ``torch.autocast``
        to bfloat16 or float16 (with a ``torch.amp.GradScaler``). Parameters
        stay float32, so a net trained in one precision predicts in another.
        On the CPU ``"bf16"`` pays and ``"fp16"`` is slow; ``"bf16"`` on a GPU
        without bfloat16 is refused.
    channels_last : bool or "auto", default="auto"
        Channels-last memory format for the module and its inputs. ``"auto"``:
        with mixed precision only (where ``benchmarks/training.py`` measured
        it to pay).
    random_state : int, RandomState instance or None, default=None
        Seeds torch (initialisation, shuffling, crops, augmentation) and
        the held-out split at every :meth:`initialize`. The same int gives
        the same predictions on the CPU.
    verbose : int, default=0
        1 prints one line per epoch (the ``progress_label``, the epoch, the
        training loss, the validation accuracy per clip and loss); 2 and
        more print skorch's table of epochs instead.
    progress_label : str or None, default=None
        Names the net in its progress lines (e.g. ``"member 2/5"``).
    train_split : None, default=None
        Must stay None: the held-out part is set by ``valid_size``.
    optimizer__param_groups : tuple, default=STUDY_PARAM_GROUPS
        Per-parameter options (skorch): weight decay 1e-3 on the second
        block's convolution kernels only (torch's ``weight_decay`` adds
        ``1e-3 * w`` to the gradient; the study's Keras ``l2(1e-3)`` adds
        ``2e-3 * w``).
    optimizer__alpha : float, default=0.9
        RMSprop smoothing constant (Keras' ``rho`` default).
    iterator_train__shuffle : bool, default=True
        Shuffle training mini-batches.
    iterator_valid__batch_size : int, default=32
        Windows per mini-batch for validation and prediction.
    **kwargs
        Other skorch parameters (``callbacks``, ``module__*``,
        ``optimizer__*``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, in the order of the columns of :meth:`predict_proba`.
    n_features_in_ : int
        ``X.shape[1]`` at fit (scikit-learn's convention; 1 for 4-D input).
    n_channels_, n_mfcc_, n_frames_ : int
        Channels, MFCC coefficients and frames of the training clips.
    window_, hop_ : int
        Window width and hop in frames, resolved from ``window``/``window_hop``.
    seed_ : int
        The torch seed of the last :meth:`initialize`.
    best_epoch_ : int
        The epoch (1-based) whose parameters the module holds.
    interrupted_ : bool
        Whether the last training was interrupted (see Notes).
    module_ : torch.nn.Module
        The trained network. ``history_`` holds per-epoch ``train_loss``
        and ``valid_loss`` (weighted so each clip counts the same),
        ``train_acc`` (per training window) and ``valid_acc`` (per held-out
        clip, its windows combined by ``combine``).

    See Also
    --------
    GenreCNN : The network.
    genreclf.GenreEnsemble : Five of these nets, soft-voted.

    Notes
    -----
    Inputs: ``X`` of shape (n_clips, 1, n_mfcc, n_frames) (as made by
    ``MFCCTransformer``), (n_clips, n_mfcc, n_frames), or (n_samples,
    n_features), read as one frame of ``n_features`` coefficients, or a
    :class:`~genreclf.clips.ClipFeatures` of clips of any widths (read a
    mini-batch of windows at a time, so features on disk are never loaded
    whole). Any numeric dtype (float32 inside); ``y`` any labels.

    The held-out split is stratified by genre when possible; where a genre
    has a single clip, the validation clips are drawn genre by genre and a
    warning names the genre, why and what to change
    (:func:`genreclf._holdout.holdout_split`). A clip narrower than
    ``window`` gives one window, filled by repeating the clip; a wider one
    gives the windows of its real frames only. The training loop
    (:mod:`genreclf._loop`) reads whole mini-batches and keeps losses on the
    device.

    An interruption (Ctrl-C) stops training, loads the best epoch so far and
    then raises ``KeyboardInterrupt`` (skorch alone would return as if the
    fit had finished), so an ensemble never takes a half-trained net for a
    finished one.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(12, 1, 20, 40)).astype("float32")
    >>> y = np.array(["rock", "jazz"] * 6)
    >>> net = GenreNet(module__filters=(4, 8), module__dense=8, max_epochs=2,
    ...                random_state=0).fit(X, y)
    >>> net.predict(X[:2]).shape
    (2,)
    >>> net.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(
        self,
        module=GenreCNN,
        *,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.RMSprop,
        lr=1e-4,
        max_epochs=20,
        batch_size=5,
        valid_size=0.2,
        monitor="valid_loss",
        lr_schedule="constant",
        average_last=0,
        window=None,
        window_hop=None,
        train_windows="random",
        combine="mean",
        time_stretch=0.0,
        tilt_shift=0.0,
        noise_snr=0.0,
        short_excerpts=0.0,
        predict_stretch=(),
        consistency=0.0,
        time_shift=0,
        time_mask=0,
        freq_mask=0,
        c0_shift=0.0,
        mixup=0.0,
        device="auto",
        precision="fp32",
        channels_last="auto",
        random_state=None,
        verbose=0,
        progress_label=None,
        train_split=None,
        optimizer__param_groups=STUDY_PARAM_GROUPS,
        optimizer__alpha=0.9,
        iterator_train__shuffle=True,
        iterator_valid__batch_size=32,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            device=device,
            verbose=verbose,
            optimizer__param_groups=optimizer__param_groups,
            optimizer__alpha=optimizer__alpha,
            iterator_train__shuffle=iterator_train__shuffle,
            iterator_valid__batch_size=iterator_valid__batch_size,
            **kwargs,
        )
        self.valid_size = valid_size
        self.monitor = monitor
        self.lr_schedule = lr_schedule
        self.average_last = average_last
        self.window = window
        self.window_hop = window_hop
        self.train_windows = train_windows
        self.combine = combine
        self.time_stretch = time_stretch
        self.tilt_shift = tilt_shift
        self.noise_snr = noise_snr
        self.short_excerpts = short_excerpts
        self.predict_stretch = predict_stretch
        self.consistency = consistency
        self.time_shift = time_shift
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.c0_shift = c0_shift
        self.mixup = mixup
        self.precision = precision
        self.channels_last = channels_last
        self.random_state = random_state
        self.progress_label = progress_label

    #: Options added in 0.2, and the values nets pickled before them behave as.
    _ADDED_PARAMS = dict(
        precision="fp32",
        channels_last="auto",
        progress_label=None,
        time_stretch=0.0,
        tilt_shift=0.0,
        noise_snr=0.0,
        consistency=0.0,
        short_excerpts=0.0,
        predict_stretch=(),
        lr_schedule="constant",
        average_last=0,
    )

    def __setstate__(self, state):
        for name, value in self._ADDED_PARAMS.items():
            state.setdefault(name, value)
        super().__setstate__(state)

    def _get_param_names(self):
        # skorch lists its private ``_params_to_validate`` as a parameter.
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    @property
    def _default_callbacks(self):
        # read whenever skorch sets up callbacks (set_params too), before fit
        # checks the values: an unchecked value adds nothing here
        callbacks = default_callbacks()
        epochs = self.max_epochs if isinstance(self.max_epochs, Integral) else 1
        if str(getattr(self, "lr_schedule", "constant")) == "cosine":
            from skorch.callbacks import LRScheduler

            schedule = LRScheduler(
                policy=torch.optim.lr_scheduler.CosineAnnealingLR, T_max=max(1, epochs)
            )
            callbacks.insert(1, ("lr_schedule", schedule))
        average = getattr(self, "average_last", 0)
        if isinstance(average, Integral) and average > 1:
            from genreclf._callbacks import WeightAverage

            callbacks.append(("weight_average", WeightAverage(self.average_last)))
        return callbacks

    # --- parameters (checked by NetInputMixin._check_own_params) ------------
    _parameter_constraints: dict = {
        "valid_size": [
            Interval(Real, 0, 1, closed="left"),
            Interval(Integral, 0, None, closed="left"),
            None,
        ],
        "monitor": [StrOptions({"valid_loss", "valid_acc", "last"})],
        "lr_schedule": [StrOptions({"constant", "cosine"})],
        "average_last": [Interval(Integral, 0, None, closed="left")],
        "window": [Interval(Integral, 1, None, closed="left"), None],
        "window_hop": [Interval(Integral, 1, None, closed="left"), None],
        "train_windows": [StrOptions({"random", "all"})],
        "combine": [StrOptions(set(COMBINE_RULES))],
        "time_stretch": [Interval(Real, 0, 0.5, closed="left")],
        "tilt_shift": [Interval(Real, 0, None, closed="left")],
        "noise_snr": [Interval(Real, 0, None, closed="left")],
        "short_excerpts": [Interval(Real, 0, 1, closed="both")],
        "predict_stretch": [tuple, list],
        "consistency": [Interval(Real, 0, None, closed="left")],
        "time_shift": [Interval(Integral, 0, None, closed="left")],
        "time_mask": [Interval(Integral, 0, None, closed="left")],
        "freq_mask": [Interval(Integral, 0, None, closed="left")],
        "c0_shift": [Interval(Real, 0, np.inf, closed="left")],
        "mixup": [Interval(Real, 0, np.inf, closed="left")],
        "precision": [StrOptions(set(PRECISIONS))],
        "channels_last": ["boolean", StrOptions({"auto"})],
        "random_state": ["random_state"],
        "progress_label": [str, None],
    }

    # --- initialisation -----------------------------------------------------
    def initialize(self):
        """Seed torch from ``random_state``, then initialise as skorch does.

        Raises
        ------
        ValueError
            For a CUDA ``device`` that this machine does not have.

        Returns
        -------
        self : GenreNet
        """
        check_device(self.__dict__.get("device", "auto"))
        rng = check_random_state(self.random_state)
        self.seed_ = int(rng.randint(np.iinfo(np.int32).max))
        torch.manual_seed(self.seed_)
        return super().initialize()

    def initialize_module(self):
        """Build the module, sized from the training data where not set.

        Returns
        -------
        self : GenreNet
        """
        kwargs = self.get_params_for("module")
        if not isinstance(self.module, nn.Module) and self._has_data_dims():
            sizes = {
                "n_classes": len(self.classes_),
                "n_mfcc": self.n_mfcc_,
                "n_frames": self.window_,
                "in_channels": self.n_channels_,
            }
            for name, value in sizes.items():
                if accepts(self.module, name):
                    kwargs.setdefault(name, value)
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    # --- training -----------------------------------------------------------
    def fit(self, X, y, **fit_params):
        """Initialise the net and train it on clips ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or ClipFeatures
            MFCCs (see Notes of the class for other shapes).
        y : array-like of shape (n_clips,)
            Labels (strings or numbers).
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self : GenreNet
        """
        reset = not (self.warm_start and self.initialized_ and self._has_data_dims())
        X, y = self._prepare_fit(X, y, reset=reset)
        if reset:
            self.initialize()
        # NeuralNet.partial_fit: trains without validating X and y again.
        super().partial_fit(X, y, _routing_method="fit", **fit_params)
        return self._raise_if_interrupted()

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train further (initialising first if needed).

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or ClipFeatures
            MFCCs.
        y : array-like of shape (n_clips,)
            Labels.
        classes : array-like, default=None
            Unused (set ``classes`` on the net to fix the label set).
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self : GenreNet
        """
        reset = not (self.initialized_ and self._has_data_dims())
        X, y = self._prepare_fit(X, y, reset=reset)
        if reset:
            self.initialize()
        super().partial_fit(X, y, **fit_params)
        return self._raise_if_interrupted()

    def get_split_datasets(self, X, y=None, **fit_params):
        """Hold out ``valid_size`` of the clips and cut both parts in windows.

        Training windows read a random augmentation variant of their clip
        where ``X`` has variants; validation windows read the clips.

        Returns
        -------
        dataset_train : WindowDataset
        dataset_valid : WindowDataset or None
        """
        names = genre_names(self.classes_)  # for the warning of a thin genre
        train, valid = holdout_split(y, self.valid_size, self.seed_, names=names)
        augment = {name: getattr(self, name) for name in WINDOW_AUGMENTATIONS}
        if self.average_last > 1 and len(valid) and self.monitor != "last":
            raise ValueError(
                f"average_last={self.average_last} averages the last epochs, but "
                f"monitor={self.monitor!r} keeps the best epoch on the held-out "
                "clips: set valid_size=0 or monitor='last'"
            )
        if self.consistency and self.mixup:
            raise ValueError(
                f"consistency={self.consistency} and mixup={self.mixup} cannot be "
                "combined: a blended window has no second view; set one to 0"
            )
        dataset_train = WindowDataset(
            X,
            y,
            train,
            self.window_,
            self.hop_,
            mode=self.train_windows,
            variants=True,
            time_stretch=self.time_stretch,
            tilt_shift=self.tilt_shift,
            noise_snr=self.noise_snr,
            short_excerpts=self.short_excerpts,
            pairs=bool(self.consistency),
            **augment,
        )
        if self.consistency and not dataset_train.varies():
            raise ValueError(
                f"consistency={self.consistency} compares two augmentations of "
                "each training window, but nothing is augmented: train on the "
                "variants of MFCCTransformer(augment=K) or set tilt_shift, "
                "noise_snr or time_stretch"
            )
        if not len(valid):
            return dataset_train, None
        return dataset_train, WindowDataset(
            X, y, valid, self.window_, self.hop_, mode="all"
        )

    # --- prediction ---------------------------------------------------------
    def _predict_batch_size(self):
        size = self.get_params_for("iterator_valid").get("batch_size", self.batch_size)
        return 1 << 30 if size == -1 else int(size)

    def predict_proba(self, X):
        """Probability of each class per clip, combined over its real windows.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or ClipFeatures
            MFCCs; any number of frames (a clip narrower than the window is
            repeated to fill one window; a wider one is cut in windows
            ``hop_`` frames apart over its own frames).

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes), float64
            Columns follow ``classes_``; rows sum to one.
        """
        check_is_fitted(self)
        X = self._check_X(X)
        check_precision(self.device, self.precision)
        self._apply_layout()
        pin = self._device_type() == "cuda"

        def log_proba(batch):
            batch = torch.from_numpy(batch)
            if pin:
                batch = batch.pin_memory()
            logits = self.evaluation_step((batch, None))
            logits = logits[0] if isinstance(logits, tuple) else logits
            return torch.log_softmax(logits.double(), dim=1).cpu().numpy()

        rates = self._predict_rates()
        if rates:
            plain = log_proba

            def log_proba(batch):
                windows = torch.from_numpy(batch)
                views = [plain(batch)]
                for rate in rates:
                    views.append(plain(stretch_windows(windows, rate).numpy()))
                mean = torch.from_numpy(np.mean(views, axis=0))
                return torch.log_softmax(mean, dim=1).numpy()

        size = self._predict_batch_size()
        return vote_windows(log_proba, X, self.window_, self.hop_, size, self.combine)

    def _predict_rates(self):
        """``predict_stretch`` as floats, checked against the module."""
        rates = tuple(float(rate) for rate in getattr(self, "predict_stretch", ()))
        if any(not 0.5 <= rate <= 2.0 for rate in rates):
            raise ValueError(
                f"predict_stretch factors must lie in [0.5, 2], got {rates}"
            )
        if rates and getattr(self.module_, "head", "global") == "flatten":
            raise ValueError(
                f"predict_stretch={rates} changes the width of the windows, "
                "which a flattening head cannot take; use module__head='global'"
            )
        return rates

    def predict(self, X):
        """Most probable label of each clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or ClipFeatures
            MFCCs.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels from ``classes_`` (genre names when fitted on names).
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
