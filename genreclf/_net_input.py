"""The input checks of :class:`genreclf.GenreNet`: what ``fit`` and ``predict`` take.

:class:`NetInputMixin` validates the net's parameters, ``X`` (a dense array
of clips or a :class:`~genreclf.clips.ClipFeatures`) and ``y``, remembers the
training data's dimensions and refuses prediction input of other dimensions.
Put it left of the skorch base class.
"""

import numpy as np
from sklearn.utils._param_validation import validate_parameter_constraints
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from genreclf._training import encode_labels, warn_deprecated_augmentations
from genreclf.clips import ClipFeatures
from genreclf.windows import as_clips, clip_widths

__all__ = ["NetInputMixin"]


class NetInputMixin:
    """Validation of a net's parameters, ``X`` and ``y``, and of its input's size.

    Expects the net's ``_parameter_constraints``, ``classes``,
    ``train_split``, ``window`` and ``window_hop``. Sets
    ``classes_inferred_``, ``n_channels_``, ``n_mfcc_``, ``n_frames_``,
    ``window_`` and ``hop_`` at a fit that starts afresh.
    """

    def _check_own_params(self):
        """Validate the parameters against ``_parameter_constraints``."""
        params = self.get_params(deep=False)
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        if self.train_split is not None:
            raise ValueError(
                "GenreNet holds out its validation clips itself: leave "
                "train_split=None and set valid_size (0 or None for no "
                "validation)"
            )
        warn_deprecated_augmentations(params, stacklevel=4)

    def _has_data_dims(self):
        return hasattr(self, "window_")

    def __sklearn_is_fitted__(self):
        return super().__sklearn_is_fitted__() and self._has_data_dims()

    def check_data(self, X, y=None):
        """Do nothing: :meth:`fit` has validated ``X`` and ``y`` already."""

    def _check_X(self, X):
        """Validate prediction input against the fitted dimensions."""
        if isinstance(X, ClipFeatures):
            X = as_clips(X)
        else:
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
            X = as_clips(X)
        self._check_dims(X)
        return X

    @staticmethod
    def _dims(X):
        """(channels, MFCCs) of clips ``X``."""
        if isinstance(X, ClipFeatures):
            return 1, X.n_mfcc
        return X.shape[1], X.shape[2]

    def _check_dims(self, X):
        channels, n_mfcc = self._dims(X)
        if (channels, n_mfcc) != (self.n_channels_, self.n_mfcc_):
            raise ValueError(
                f"X has {channels} channel(s) of {n_mfcc} MFCCs, but "
                f"GenreNet was fitted on {self.n_channels_} channel(s) of "
                f"{self.n_mfcc_} MFCCs"
            )
        return X

    def _validate_clip_features(self, X, y, reset):
        """``validate_data`` for ClipFeatures: check ``y``, set n_features_in_."""
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None), warn=True)
        check_consistent_length(X, y)
        if not len(X):
            raise ValueError(
                "Found array with 0 sample(s) while a minimum of 1 is required."
            )
        if reset:
            self.n_features_in_ = 1
            self.__dict__.pop("feature_names_in_", None)
        elif getattr(self, "n_features_in_", 1) != 1:
            raise ValueError(
                f"X has 1 feature, but GenreNet is expecting {self.n_features_in_} "
                "features as input"
            )
        return X, y

    def _prepare_fit(self, X, y, reset):
        """Validate, remember the data's dimensions (if ``reset``), encode ``y``."""
        self._check_own_params()
        if isinstance(X, ClipFeatures):
            X, y = self._validate_clip_features(X, y, reset)
        else:
            X, y = validate_data(
                self, X, y, reset=reset, allow_nd=True, dtype=np.float32
            )
        check_classification_targets(y)
        X = as_clips(X)
        if not reset:
            self._check_dims(X)
            classes = self.classes_
        elif self.classes is not None and len(self.classes):
            classes = np.asarray(self.classes)
        else:
            classes = np.unique(y)
        y_enc = encode_labels(y, classes)
        if reset:
            self.classes_inferred_ = classes
            self.n_channels_, self.n_mfcc_ = self._dims(X)
            self.n_frames_ = int(clip_widths(X).max())
            self.window_ = int(self.window or self.n_frames_)
            self.hop_ = int(self.window_hop or max(1, self.window_ // 2))
        return X, y_enc
