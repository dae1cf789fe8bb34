"""The torch network: :class:`GenreCNN`, its convolution blocks, its input statistics.

Every class here sits at module top level, so that a pickled or MLflow-logged
model loads in a fresh process. :mod:`genreclf.model` re-imports them: models
saved before this module existed reference ``genreclf.model.GenreCNN`` and
``genreclf.model._ConvBlock``, and those paths keep resolving.
"""

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvBlock", "GenreCNN", "input_stats"]

_HEADS = ("flatten", "global")


def _pool_size(size):
    return size // 2 if size >= 2 else size


class ConvBlock(nn.Module):
    """[3x3 conv, (BN), ReLU] x 2, then 2x2 max-pooling of the sides >= 2.

    Parameters
    ----------
    in_channels : int
        Channels of the input feature map.
    out_channels : int
        Filters of both convolutions.
    batch_norm : bool
        Batch normalization after each convolution (else ``nn.Identity``).

    Examples
    --------
    >>> block = ConvBlock(1, 4, batch_norm=False)
    >>> block(torch.zeros(2, 1, 5, 9)).shape
    torch.Size([2, 4, 2, 4])
    >>> block(torch.zeros(2, 1, 1, 9)).shape  # a side of 1 is not pooled
    torch.Size([2, 4, 1, 4])
    """

    def __init__(self, in_channels, out_channels, batch_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x):
        """Feature map of a batch ``x`` of shape (n, in_channels, rows, frames)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        kernel = (2 if x.shape[-2] >= 2 else 1, 2 if x.shape[-1] >= 2 else 1)
        return F.max_pool2d(x, kernel)


def input_stats(X, smoothing=1):
    """Mean, std and std of the frame-to-frame change of each input row.

    Parameters
    ----------
    X : torch.Tensor of shape (n, channels, rows, frames)
        A batch of inputs.
    smoothing : int, default=1
        The change is taken between moving means of this many frames
        (odd; 1: between the frames themselves; fewer at the edges). A
        tempo change interpolates neighbouring frames, which lowers the
        spread of the frame-to-frame change but hardly that of already
        smoothed frames.

    Returns
    -------
    stats : torch.Tensor of shape (n, 3 * channels * rows)
        The means of every row, then their standard deviations, then the
        standard deviations of their changes. One frame gives zero spreads,
        never NaN.

    Examples
    --------
    >>> X = torch.tensor([[[[0.0, 2.0, 4.0, 6.0]]]])  # one row, a steady rise
    >>> input_stats(X).tolist()
    [[3.0, 2.2360680103302, 0.0]]
    """
    moving = X
    if smoothing > 1 and X.shape[-1] > 1:
        moving = F.avg_pool2d(
            X,
            (1, smoothing),
            stride=1,
            padding=(0, smoothing // 2),
            count_include_pad=False,
        )
    change = moving.diff(dim=-1) if X.shape[-1] > 1 else torch.zeros_like(X)
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
    stats_smoothing : int, default=1
        With ``input_stats``: the change is taken between moving means of
        this many frames (odd), so that the interpolation of a tempo
        change moves it less (:func:`input_stats`).

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
        stats_smoothing=1,
    ):
        super().__init__()
        if head not in _HEADS:
            raise ValueError(f"head must be one of {_HEADS}, got {head!r}")
        smooth = stats_smoothing
        if (
            isinstance(smooth, bool)
            or int(smooth) != smooth
            or smooth < 1
            or smooth % 2 != 1
        ):
            raise ValueError(
                f"stats_smoothing must be an odd positive int, got {stats_smoothing!r}"
            )
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) < 1:
            raise ValueError(f"filters must be positive ints, got {filters!r}")
        self.head = head
        self.input_stats = bool(input_stats)
        self.stats_smoothing = int(stats_smoothing)
        self.n_frames = int(n_frames)
        channels = (int(in_channels),) + filters
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, batch_norm)
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
        stats = None
        if self.input_stats:
            # modules pickled before stats_smoothing existed took raw changes
            stats = input_stats(X, getattr(self, "stats_smoothing", 1))
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
