"""The CNN (torch) and its scikit-learn classifier (skorch) with ``random_state``.

:class:`GenreCNN` is the reference study's network by default and its
proposed successors by option; :class:`GenreNet` trains it the study's way
(RMSprop, cross-entropy, L2 on the second block, batch size 5), keeps the
best epoch on a stratified held-out part, and can vote fixed-width windows
per clip (slice voting).
"""

import inspect
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch import nn
from torch.nn import functional as F

from genreclf._slicing import (
    COMBINE_RULES,
    WindowDataset,
    combine_windows,
    finish_combine,
    iter_window_batches,
    window_starts,
)
from genreclf._training import BatchAccuracy, BestEpoch, holdout_split, resolve_device

__all__ = ["GenreCNN", "GenreNet", "STUDY_PARAM_GROUPS"]

#: ``optimizer__param_groups`` of the study: L2 weight decay 1e-3 on the two
#: convolution kernels of the second block only.
STUDY_PARAM_GROUPS = (("blocks.1.conv*.weight", {"weight_decay": 1e-3}),)
_HEADS = ("flatten", "global")


def _pool_size(size):
    return size // 2 if size >= 2 else size


class _ConvBlock(nn.Module):
    """[3x3 conv, (BN), ReLU] x 2, then 2x2 max-pooling of the sides >= 2."""

    def __init__(self, in_channels, out_channels, batch_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        kernel = (2 if x.shape[-2] >= 2 else 1, 2 if x.shape[-1] >= 2 else 1)
        return F.max_pool2d(x, kernel)


def _input_stats(X):
    """Mean, std and std of the frame-to-frame change of each input row.

    ``X`` of shape (n, channels, rows, frames) -> (n, 3 * channels * rows);
    one frame gives zero spreads, never NaN.
    """
    change = X.diff(dim=-1) if X.shape[-1] > 1 else torch.zeros_like(X)
    parts = [X.mean(dim=-1), X.std(dim=-1, correction=0)]
    parts.append(change.std(dim=-1, correction=0))
    return torch.cat(parts, dim=1).flatten(1)


class GenreCNN(nn.Module):
    """VGG-style CNN over MFCCs; by default the reference study's network.

    Each block is [3x3 conv, ReLU, 3x3 conv, ReLU, 2x2 max-pool] with "same"
    padding, so 20 MFCC rows survive three poolings (20 -> 10 -> 5 -> 2; a
    side shorter than 2 is not pooled). A head turns the last feature map
    into ``n_classes`` logits.

    Parameters
    ----------
    n_classes : int, default=8
        Number of genres (logits).
    n_mfcc : int, default=20
        MFCC coefficients per frame (input height).
    n_frames : int, default=1230
        Frames per input (width); fixes the input size of the ``"flatten"``
        head and is unused by the ``"global"`` head.
    filters : tuple of int, default=(64, 160, 128)
        Filters of each block; more entries make a deeper net.
    dense : int or None, default=64
        Units of the hidden dense layer (ReLU); None or 0 for none.
    batch_norm : bool, default=False
        Batch normalization after each convolution.
    dropout : float, default=0.0
        Dropout rate before each dense layer of the head.
    head : {"flatten", "global"}, default="flatten"
        ``"flatten"``: flatten the last feature map (fixed ``n_frames``).
        ``"global"``: average and maximum over time, concatenated, so any
        number of frames works.
    in_channels : int, default=1
        Input channels.
    input_stats : bool, default=False
        Also feed the head three statistics over time of each input
        coefficient (per channel): its mean, its standard deviation and the
        standard deviation of its frame-to-frame change (how fast it moves):
        the summary a classic MFCC classifier uses, beside what the
        convolutions learn. Batch-normalised when ``batch_norm`` is set.
        Cheap, and it gives a small net trained on little data a strong
        start.

    Notes
    -----
    Convolution and dense weights get Xavier (Glorot) uniform
    initialisation and zero biases, as Keras does by default. Layers are
    named ``blocks.<i>.conv1``/``conv2``, ``hidden`` and ``output``, the names
    that ``optimizer__param_groups`` patterns refer to.

    Examples
    --------
    >>> net = GenreCNN(n_classes=10)
    >>> net(torch.zeros(2, 1, 20, 1230)).shape
    torch.Size([2, 10])
    >>> net = GenreCNN(n_classes=3, filters=(8, 8), dense=16, head="global")
    >>> net(torch.zeros(4, 1, 20, 37)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        n_classes=8,
        n_mfcc=20,
        n_frames=1230,
        filters=(64, 160, 128),
        dense=64,
        batch_norm=False,
        dropout=0.0,
        head="flatten",
        in_channels=1,
        input_stats=False,
    ):
        super().__init__()
        if head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) < 1:
            raise ValueError(f"filters must be positive ints, got {filters!r}")
        self.head = head
        self.input_stats = bool(input_stats)
        self.n_frames = int(n_frames)
        channels = (int(in_channels),) + filters
        self.blocks = nn.ModuleList(
            _ConvBlock(c_in, c_out, batch_norm)
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        height, width = int(n_mfcc), self.n_frames
        for _ in filters:
            height, width = _pool_size(height), _pool_size(width)
        if head == "flatten":
            if width < 1:
                raise ValueError(f"n_frames must be >= 1, got {n_frames}")
            n_features = filters[-1] * height * width
        else:
            n_features = 2 * filters[-1] * height
        self.stats_norm = None
        if self.input_stats:
            n_stats = 3 * int(in_channels) * int(n_mfcc)
            n_features += n_stats
            if batch_norm:
                self.stats_norm = nn.BatchNorm1d(n_stats)
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Linear(n_features, dense) if dense else None
        self.output = nn.Linear(dense or n_features, int(n_classes))
        for layer in self.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def _normalise_stats(self, stats):
        norm = self.stats_norm
        if not (self.training and len(stats) < 2):
            return norm(stats)
        # A batch of one window (the last of an epoch) has no batch
        # statistics: normalise it with the running ones, as at prediction.
        return F.batch_norm(
            stats,
            norm.running_mean,
            norm.running_var,
            norm.weight,
            norm.bias,
            training=False,
            eps=norm.eps,
        )

    def forward(self, X):
        """Logits of a batch.

        Parameters
        ----------
        X : torch.Tensor of shape (n, in_channels, n_mfcc, n_frames)
            MFCCs (a 3-D batch gets the channel axis added).

        Returns
        -------
        logits : torch.Tensor of shape (n, n_classes)
        """
        if X.dim() == 3:
            X = X.unsqueeze(1)
        if self.head == "flatten" and X.shape[-1] != self.n_frames:
            raise ValueError(
                f"GenreCNN(head='flatten') was built for n_frames={self.n_frames} "
                f"but got {X.shape[-1]} frames; use head='global' for any width"
            )
        stats = _input_stats(X) if self.input_stats else None
        if self.stats_norm is not None:
            stats = self._normalise_stats(stats)
        for block in self.blocks:
            X = block(X)
        if self.head == "flatten":
            X = X.flatten(1)
        else:
            X = torch.cat([X.mean(dim=-1), X.amax(dim=-1)], dim=1).flatten(1)
        if stats is not None:
            X = torch.cat([X, stats], dim=1)
        if self.hidden is not None:
            X = F.relu(self.hidden(self.dropout(X)))
        return self.output(self.dropout(X))


def _accepts(factory, name):
    """Whether ``factory(**{name: ...})`` is a valid call."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _check_count(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
        what = f"None or an int >= {minimum}" if allow_none else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")


class GenreNet(NeuralNetClassifier):
    """The CNN as a scikit-learn classifier, trained the reference study's way.

    One sample is one clip of MFCCs. By default the whole clip is one input
    of the net (the study); with ``window`` the net sees fixed-width windows
    of each clip (random crops or every window during training) and the
    windows' probabilities are combined per clip at prediction (slice
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
        Learning rate. RMSprop's usual 1e-3 left the study's network at
        chance on real music here (gtzan-100, 70 training clips, whole clips
        and 3 s windows alike), while 1e-4 learns.
    max_epochs : int, default=20
        Epochs per fit; the best epoch on the held-out part is kept.
    batch_size : int, default=5
        Training mini-batch size (the study's 5).
    valid_size : float, int or None, default=0.2
        Held-out part used to choose the best epoch: a fraction of the clips
        (float) or a number of clips (int); 0 or None trains on every clip
        and keeps the last epoch. The split is stratified; where a fold is
        too small for that, see Notes.
    monitor : {"valid_loss", "valid_acc"}, default="valid_loss"
        Score on the held-out part that chooses the best epoch.
    window : int or None, default=None
        Width of the net's input in frames (about 43 frames per second at
        22050 Hz and hop_length 512: 129 frames is 3 s). None: the whole
        clip, as wide as the training clips.
    window_hop : int or None, default=None
        Frames between windows at prediction, for validation and for
        ``train_windows="all"``. None: half a window.
    train_windows : {"random", "all"}, default="random"
        ``"random"``: each epoch, one random window of every training clip.
        ``"all"``: every window (``window_hop`` apart) is a training sample.
    combine : {"mean", "logmean", "vote"}, default="mean"
        How :meth:`predict_proba` combines the windows of a clip: mean of
        probabilities, normalised mean of log-probabilities, or the fraction
        of windows voting for each class.
    time_shift : int, default=0
        Training augmentation: circular shift of up to this many frames.
    time_mask : int, default=0
        Training augmentation: zero one band of up to this many frames.
    freq_mask : int, default=0
        Training augmentation: zero one band of up to this many MFCCs.
    c0_shift : float, default=0.0
        Training augmentation: add a uniform draw from ``[-c0_shift,
        c0_shift]`` to the first MFCC (c0), the one coefficient a change of
        gain moves (in the net's input units, i.e. standard deviations after
        ``MFCCStandardizer``).
    mixup : float, default=0.0
        Training augmentation (mixup): each mini-batch is blended with a
        shuffled copy of itself, ``lam * x_i + (1 - lam) * x_j`` with ``lam``
        drawn from Beta(mixup, mixup), and the loss is the same blend of the
        two clips' losses. 0 turns it off; 0.2-0.4 is usual.
    device : str or torch.device, default="auto"
        ``"auto"``: ``"cuda"`` when available, else ``"cpu"`` (decided on
        use, so a net pickled on a GPU machine runs on a CPU-only one).
    random_state : int, RandomState instance or None, default=None
        Seeds torch (initialisation, shuffling, crops, augmentation) and
        the held-out split at every :meth:`initialize`. The same int gives
        the same predictions on the CPU.
    verbose : int, default=0
        1 prints a table of epochs.
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
        The trained network. ``history_`` holds per-epoch ``train_loss``,
        ``train_acc``, ``valid_loss``, ``valid_acc`` (per window).

    See Also
    --------
    GenreCNN : The network.
    genreclf.GenreEnsemble : Five of these nets, soft-voted.

    Notes
    -----
    Inputs: ``X`` of shape (n_clips, 1, n_mfcc, n_frames) (as made by
    ``MFCCTransformer``), (n_clips, n_mfcc, n_frames), or (n_samples,
    n_features), read as one frame of ``n_features`` coefficients. Any
    numeric dtype (float32 inside); ``y`` any labels.

    The held-out split is stratified when possible. On folds where that is
    impossible (a class with a single clip, fewer held-out clips than
    classes) the held-out clips are drawn class by class without taking any
    class's last clip, with a warning; if no clip can be spared, training
    uses every clip and keeps the last epoch. Clips narrower than ``window``
    are tiled to the window.

    An interruption (Ctrl-C) stops training, loads the best epoch so far and
    then raises ``KeyboardInterrupt`` (skorch alone would return as if the fit
    had finished), so an ensemble or a search never takes a half-trained net
    for a finished one.

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
        window=None,
        window_hop=None,
        train_windows="random",
        combine="mean",
        time_shift=0,
        time_mask=0,
        freq_mask=0,
        c0_shift=0.0,
        mixup=0.0,
        device="auto",
        random_state=None,
        verbose=0,
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
        self.window = window
        self.window_hop = window_hop
        self.train_windows = train_windows
        self.combine = combine
        self.time_shift = time_shift
        self.time_mask = time_mask
        self.freq_mask = freq_mask
        self.c0_shift = c0_shift
        self.mixup = mixup
        self.random_state = random_state

    # "auto" stays the parameter; skorch's internals read the resolved device.
    @property
    def device(self):
        """The torch device in use (``"auto"`` resolved)."""
        return resolve_device(self.__dict__.get("device", "auto"))

    @device.setter
    def device(self, value):
        self.__dict__["device"] = value

    def _get_param_names(self):
        # skorch lists its private ``_params_to_validate`` as a parameter.
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    def get_params(self, deep=True, **kwargs):
        """Get parameters, with ``device`` as set (``"auto"`` unresolved)."""
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = self.__dict__.get("device", "auto")
        return params

    def __setstate__(self, state):
        requested = state.get("device")
        auto = isinstance(requested, str) and requested == "auto"
        if auto:
            state["device"] = resolve_device("auto")
        super().__setstate__(state)
        if auto:
            self.__dict__["device"] = "auto"
        elif isinstance(requested, str) and isinstance(self.device, torch.device):
            # skorch fell back (e.g. "cuda" without CUDA): keep a string parameter.
            self.__dict__["device"] = str(self.device)

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("batch_acc", BatchAccuracy()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            (
                "train_acc",
                PassthroughScoring(
                    name="train_acc", lower_is_better=False, on_train=True
                ),
            ),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            (
                "valid_acc",
                PassthroughScoring(name="valid_acc", lower_is_better=False),
            ),
            ("best_epoch", BestEpoch()),
            ("print_log", PrintLog()),
        ]

    def __sklearn_is_fitted__(self):
        return super().__sklearn_is_fitted__() and self._has_data_dims()

    # --- data -------------------------------------------------------------
    def _check_own_params(self):
        _check_count("window", self.window, 1, allow_none=True)
        _check_count("window_hop", self.window_hop, 1, allow_none=True)
        for name in ("time_shift", "time_mask", "freq_mask"):
            _check_count(name, getattr(self, name), 0)
        for name in ("c0_shift", "mixup"):
            value = getattr(self, name)
            if not isinstance(value, Real) or not 0 <= value < np.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        choices = {
            "train_windows": ("random", "all"),
            "combine": COMBINE_RULES,
            "monitor": ("valid_loss", "valid_acc"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.train_split is not None:
            raise ValueError(
                "GenreNet holds out its validation clips itself: leave "
                "train_split=None and set valid_size (0 or None for no "
                "validation)"
            )

    @staticmethod
    def _reshape(X):
        """View 2-D, 3-D or 4-D input as (n, channels, n_mfcc, n_frames)."""
        if X.ndim == 2:
            X = X[:, None, :, None]
        elif X.ndim == 3:
            X = X[:, None]
        elif X.ndim != 4:
            raise ValueError(
                "X must have shape (n_clips, 1, n_mfcc, n_frames), "
                f"(n_clips, n_mfcc, n_frames) or (n_samples, n_features); got {X.shape}"
            )
        if min(X.shape[1:]) < 1:
            raise ValueError(f"X has an empty axis: shape {X.shape}")
        return X

    def _check_X(self, X):
        """Validate prediction input against the fitted dimensions."""
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
        X = self._reshape(X)
        self._check_dims(X)
        return X

    def _check_dims(self, X):
        if X.shape[1:3] != (self.n_channels_, self.n_mfcc_):
            raise ValueError(
                f"X has {X.shape[1]} channel(s) of {X.shape[2]} MFCCs, but "
                f"GenreNet was fitted on {self.n_channels_} channel(s) of "
                f"{self.n_mfcc_} MFCCs"
            )
        return X

    def _prepare_fit(self, X, y, reset):
        """Validate, remember the data's dimensions (if ``reset``), encode ``y``."""
        self._check_own_params()
        X, y = validate_data(self, X, y, reset=reset, allow_nd=True, dtype=np.float32)
        check_classification_targets(y)
        X = self._reshape(X)
        if not reset:
            self._check_dims(X)
            classes = self.classes_
        elif self.classes is not None and len(self.classes):
            classes = np.asarray(self.classes)
        else:
            classes = np.unique(y)
        order = np.argsort(classes, kind="stable")
        pos = np.searchsorted(classes, y, sorter=order).clip(0, len(classes) - 1)
        y_enc = order[pos]
        unknown = classes[y_enc] != y
        if np.any(unknown):
            raise ValueError(
                f"y has labels not in classes: {np.unique(y[unknown]).tolist()}"
            )
        if reset:
            self.classes_inferred_ = classes
            _, self.n_channels_, self.n_mfcc_, self.n_frames_ = X.shape
            self.window_ = int(self.window or self.n_frames_)
            self.hop_ = int(self.window_hop or max(1, self.window_ // 2))
        return X, y_enc.astype(np.int64)

    def check_data(self, X, y=None):
        """Do nothing: :meth:`fit` has validated ``X`` and ``y`` already."""

    # --- initialisation -----------------------------------------------------
    def initialize(self):
        """Seed torch from ``random_state``, then initialise as skorch does.

        Returns
        -------
        self : GenreNet
        """
        rng = check_random_state(self.random_state)
        self.seed_ = int(rng.randint(np.iinfo(np.int32).max))
        torch.manual_seed(self.seed_)
        return super().initialize()

    def _has_data_dims(self):
        return hasattr(self, "window_")

    def _data_module_kwargs(self):
        if not self._has_data_dims():
            return {}
        return {
            "n_classes": len(self.classes_),
            "n_mfcc": self.n_mfcc_,
            "n_frames": self.window_,
            "in_channels": self.n_channels_,
        }

    def initialize_module(self):
        """Build the module, sized from the training data where not set.

        Returns
        -------
        self : GenreNet
        """
        kwargs = self.get_params_for("module")
        if not isinstance(self.module, nn.Module):
            for name, value in self._data_module_kwargs().items():
                if _accepts(self.module, name):
                    kwargs.setdefault(name, value)
        self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    # --- training -----------------------------------------------------------
    def fit(self, X, y, **fit_params):
        """Initialise the net and train it on clips ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames)
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
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames)
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

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's training loop, remembering an interruption (Ctrl-C).

        Returns
        -------
        self : GenreNet
        """
        self.interrupted_ = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = True
            raise  # skorch stops training and runs on_train_end

    def train_step_single(self, batch, **fit_params):
        """One optimisation step's loss; with ``mixup``, on a blended batch."""
        if not self.mixup:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        yi = to_tensor(yi, device=self.device)
        # torch's global generator: seeded by random_state in initialize()
        lam = float(torch.distributions.Beta(self.mixup, self.mixup).sample())
        perm = torch.randperm(len(Xi)).to(Xi.device)
        mixed = lam * Xi + (1.0 - lam) * Xi[perm]
        y_pred = self.infer(mixed, **fit_params)
        loss = lam * self.get_loss(y_pred, yi, X=mixed, training=True) + (
            1.0 - lam
        ) * self.get_loss(y_pred, yi[perm], X=mixed, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def _raise_if_interrupted(self):
        if getattr(self, "interrupted_", False):
            raise KeyboardInterrupt(
                f"GenreNet training interrupted after {len(self.history)} epoch(s)"
            )
        return self

    def get_split_datasets(self, X, y=None, **fit_params):
        """Hold out ``valid_size`` of the clips and cut both parts in windows.

        Returns
        -------
        dataset_train : WindowDataset
        dataset_valid : WindowDataset or None
        """
        train, valid = holdout_split(y, self.valid_size, self.seed_)
        dataset_train = WindowDataset(
            X,
            y,
            train,
            self.window_,
            self.hop_,
            mode=self.train_windows,
            time_shift=self.time_shift,
            time_mask=self.time_mask,
            freq_mask=self.freq_mask,
            c0_shift=self.c0_shift,
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
        """Probability of each class per clip, combined over its windows.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames)
            MFCCs; any number of frames (a clip narrower than the window is
            tiled; a wider one is cut in windows ``hop_`` frames apart).

        Returns
        -------
        proba : ndarray of shape (n_clips, n_classes), float64
            Columns follow ``classes_``; rows sum to one.
        """
        check_is_fitted(self)
        X = self._check_X(X)
        totals = np.zeros((len(X), len(self.classes_)))
        width = max(X.shape[-1], self.window_)
        n_windows = len(window_starts(width, self.window_, self.hop_))
        batches = iter_window_batches(
            X, self.window_, self.hop_, self._predict_batch_size()
        )
        for clip_ids, batch in batches:
            logits = self.evaluation_step((torch.from_numpy(batch), None))
            logits = logits[0] if isinstance(logits, tuple) else logits
            log_proba = torch.log_softmax(logits.double(), dim=1).cpu().numpy()
            combine_windows(log_proba, clip_ids, totals, self.combine)
        return finish_combine(totals, n_windows, self.combine)

    def predict(self, X):
        """Most probable label of each clip.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames)
            MFCCs.

        Returns
        -------
        y_pred : ndarray of shape (n_clips,)
            Labels from ``classes_`` (genre names when fitted on names).
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]
