"""Per-coefficient standardization of MFCC images.

:class:`MFCCStandardizer` is public as ``genreclf.features.MFCCStandardizer``;
it lives apart so that :mod:`genreclf.features` holds the transformer and the
bad-file screen in a module of readable size.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["MFCCStandardizer"]


class MFCCStandardizer(TransformerMixin, BaseEstimator):
    """Scale every MFCC to zero mean and unit variance.

    On MFCC images ``(n_clips, 1, n_mfcc, n_frames)`` (any array of three or
    more dimensions whose next-to-last axis holds the coefficients), one mean
    and one standard deviation are learned per coefficient, over clips,
    channels and frames. On a 2-D array ``(n_samples, n_features)`` it is a
    per-feature standard scaler. On a :class:`~genreclf.clips.ClipFeatures`
    (clips of their own widths, ``MFCCTransformer(duration=None)``) the
    statistics are accumulated clip by clip, every frame weighing the same
    as in the dense case, and ``transform`` returns a view of ``X`` with the
    affine map attached: nothing is copied and nothing is read.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean.
    with_std : bool, default=True
        Divide by the standard deviation (1 where it is zero).

    Attributes
    ----------
    mean_ : ndarray of shape (n_coefficients,), float64
        Mean of every coefficient (zeros when ``with_mean=False``).
    scale_ : ndarray of shape (n_coefficients,), float64
        Standard deviation of every coefficient (ones when
        ``with_std=False``).
    n_features_in_ : int
        Size of the second axis of ``X`` in ``fit`` (1 for a ClipFeatures,
        which has one channel).

    See Also
    --------
    genreclf.features.MFCCTransformer : Makes the MFCC images.
    sklearn.preprocessing.StandardScaler : The 2-D equivalent.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, (4, 1, 20, 50))
    >>> scaler = MFCCStandardizer().fit(X.astype(np.float32))
    >>> Xt = scaler.transform(X.astype(np.float32))
    >>> Xt.shape, Xt.dtype, scaler.mean_.shape
    ((4, 1, 20, 50), dtype('float32'), (20,))
    >>> bool(abs(Xt[:, :, 0].mean()) < 1e-6)
    True
    """

    _parameter_constraints = {"with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    @staticmethod
    def _axes(X):
        """Axes reduced over, and the shape that broadcasts the statistics."""
        if X.ndim == 2:
            return (0,), (1, X.shape[1])
        if X.ndim < 2:  # pragma: no cover - validate_data rejects it
            raise ValueError(f"X must have 2 or more dimensions, got {X.ndim}")
        axes = tuple(i for i in range(X.ndim) if i != X.ndim - 2)
        shape = [1] * X.ndim
        shape[-2] = X.shape[-2]
        return axes, tuple(shape)

    def _fit_clips(self, X):
        """Per-coefficient mean and std of a ClipFeatures, streaming over clips.

        Chan's pairwise update of (count, mean, sum of squared deviations) in
        float64, clip by clip: exact to rounding and as weighted by frames as
        the dense statistics. Only variant 0 (the clips themselves) counts.
        """
        n_rows = X.n_mfcc
        count = 0
        mean = np.zeros(n_rows)
        m2 = np.zeros(n_rows)
        for i in range(len(X)):
            clip = X.clip(i)[0].astype(np.float64)
            n = clip.shape[1]
            c_mean = clip.mean(axis=1)
            c_m2 = np.square(clip - c_mean[:, None]).sum(axis=1)
            delta = c_mean - mean
            total = count + n
            mean += delta * (n / total)
            m2 += c_m2 + np.square(delta) * (count * n / total)
            count = total
        if count == 0:
            raise ValueError("cannot fit MFCCStandardizer on 0 clips")
        self._ndim = 4
        self.n_features_in_ = 1
        self.mean_ = mean if self.with_mean else np.zeros(n_rows)
        if self.with_std:
            # as numpy's std: about the mean, even when with_mean=False
            scale = np.sqrt(m2 / count)
            tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean_))
            scale[scale < tiny] = 1.0
            self.scale_ = scale
        else:
            self.scale_ = np.ones(n_rows)
        return self

    def _check_clips(self, X):
        check_is_fitted(self)
        if self._ndim == 2 or X.n_mfcc != self.mean_.shape[0]:
            raise ValueError(
                f"X has {X.n_mfcc} coefficients per frame, but this standardizer was "
                f"fitted on {self._ndim}-D data with {self.mean_.shape[0]} "
                "coefficients"
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the mean and standard deviation of every coefficient.

        Parameters
        ----------
        X : array-like of shape (n_clips, 1, n_mfcc, n_frames) or (n, n_features), \
or ClipFeatures
            Features.
        y : None
            Ignored.

        Returns
        -------
        self : MFCCStandardizer
            The fitted standardizer.
        """
        if _is_clips(X):
            return self._fit_clips(X)
        X = validate_data(self, X, allow_nd=True, dtype=[np.float64, np.float32])
        axes, _ = self._axes(X)
        self._ndim = X.ndim
        if self.with_mean:
            self.mean_ = X.mean(axis=axes, dtype=np.float64)
        else:
            self.mean_ = np.zeros(X.shape[-2 if X.ndim > 2 else 1])
        if self.with_std:
            scale = X.std(axis=axes, dtype=np.float64)
            tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(self.mean_))
            scale[scale < tiny] = 1.0
            self.scale_ = scale
        else:
            self.scale_ = np.ones_like(self.mean_)
        return self

    def _check(self, X):
        check_is_fitted(self)
        X = validate_data(
            self, X, allow_nd=True, dtype=[np.float64, np.float32], reset=False
        )
        if (X.ndim == 2) != (self._ndim == 2) or X.shape[-2 if X.ndim > 2 else 1] != (
            self.mean_.shape[0]
        ):
            raise ValueError(
                f"X has shape {X.shape}, but this standardizer was fitted on "
                f"{self._ndim}-D data with {self.mean_.shape[0]} coefficients"
            )
        _, shape = self._axes(X)
        mean = self.mean_.reshape(shape).astype(X.dtype)
        scale = self.scale_.reshape(shape).astype(X.dtype)
        return X, mean, scale

    def transform(self, X):
        """Standardize every coefficient.

        Parameters
        ----------
        X : array-like of the shape seen in ``fit``
            Features.

        Returns
        -------
        X_scaled : ndarray of the same shape, float32 or float64 as ``X``, \
or ClipFeatures
            ``(X - mean_) / scale_`` per coefficient; for a ClipFeatures, a
            view of it that applies this when read.
        """
        if _is_clips(X):
            self._check_clips(X)
            return X.with_affine(1.0 / self.scale_, -self.mean_ / self.scale_)
        X, mean, scale = self._check(X)
        return (X - mean) / scale

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of the shape seen in ``fit``
            Standardized features.

        Returns
        -------
        X_orig : ndarray of the same shape, float32 or float64 as ``X``, \
or ClipFeatures
            ``X * scale_ + mean_`` per coefficient (a view, for a
            ClipFeatures).
        """
        if _is_clips(X):
            self._check_clips(X)
            return X.with_affine(self.scale_, self.mean_)
        X, mean, scale = self._check(X)
        return X * scale + mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _is_clips(X):
    """Tell whether ``X`` is a :class:`~genreclf.clips.ClipFeatures`."""
    from genreclf.clips import ClipFeatures

    return isinstance(X, ClipFeatures)
