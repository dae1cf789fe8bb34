"""genreclf.clips and MFCCTransformer(duration=None): clips at their real length."""

import os
import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import InvalidParameterError

from genreclf import _augment, _mfcc, _mfcc_cache
from genreclf.audio import load_audio
from genreclf.clips import ClipFeatures
from genreclf.features import MFCCStandardizer, MFCCTransformer, compute_mfcc

HOP = 512


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    """Clips of different lengths and kinds; 0.005 s is shorter than one FFT."""
    import soundfile as sf
    from conftest import synth_signal

    root = tmp_path_factory.mktemp("ragged")
    spec = [
        ("chirp", 22050, 2.5, "wav"),
        ("noise", 22050, 0.7, "flac"),
        ("tone", 22050, 0.005, "wav"),
        ("clicks", 44100, 1.3, "ogg"),
        ("chirp", 22050, 1.0, "mp3"),
        ("noise", 16000, 3.2, "wav"),
    ]
    paths = []
    for k, (kind, sr, seconds, fmt) in enumerate(spec):
        path = root / f"{k}_{kind}_{sr}.{fmt}"
        sf.write(
            path, synth_signal(kind, sr, seconds, 1, seed=k), sr, format=fmt.upper()
        )
        paths.append(str(path))
    return paths


def real_frames(path, **kwargs):
    """Frames of a whole file at 22050 Hz and hop 512, from its decoded length."""
    return 1 + load_audio(path, **kwargs).shape[0] // HOP


# -- ClipFeatures ----------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((4, n)).astype(np.float32) for n in (7, 3, 12, 1, 5)]


def test_clip_features_indexing(small):
    X = ClipFeatures(small)
    assert len(X) == 5 and X.shape == (5,) and X.ndim == 1 and X.n_mfcc == 4
    assert X.n_frames.tolist() == [7, 3, 12, 1, 5] and not X.on_disk
    np.testing.assert_array_equal(X[2], small[2][None])
    np.testing.assert_array_equal(X[-1], small[4][None])
    assert X[1:4].n_frames.tolist() == [3, 12, 1]
    assert X[np.array([4, 0])].n_frames.tolist() == [5, 7]
    mask = np.array([True, False, True, False, False])
    assert X[mask].n_frames.tolist() == [7, 12]
    assert X[[3], ...].n_frames.tolist() == [1]
    assert X.take([2, 2]).n_frames.tolist() == [12, 12]
    with pytest.raises(IndexError, match="takes one index"):
        X[0, 1]
    with pytest.raises(ValueError, match="only be indexed along its clips"):
        X.take([0], axis=1)
    with pytest.raises(TypeError, match="not turned into one array"):
        np.asarray(X)
    assert "5 clips" in repr(X) and "memory" in repr(X)


def test_clip_features_constructor_errors(small):
    with pytest.raises(ValueError, match="different numbers of coefficients"):
        ClipFeatures([np.ones((3, 4)), np.ones((2, 4))])
    with pytest.raises(ValueError, match="shape \\(n_mfcc, n_frames\\)"):
        ClipFeatures([np.ones(4)])
    with pytest.raises(ValueError, match="2 clips but 3 widths"):
        ClipFeatures(small[:2], n_frames=[1, 2, 3])
    with pytest.raises(ValueError, match="2 clips but variants for 1"):
        ClipFeatures(small[:2], variants=[[small[0]]])
    with pytest.raises(ValueError, match="same number of variants"):
        ClipFeatures(small[:2], variants=[[small[0]], []])
    empty = ClipFeatures([])
    assert len(empty) == 0 and empty.n_mfcc == 0 and empty.to_padded().shape[0] == 0


def test_windows_repeat_short_clips_and_clamp(small):
    X = ClipFeatures(small)
    np.testing.assert_array_equal(X.window(0, 2, 4)[0], small[0][:, 2:6])
    np.testing.assert_array_equal(X.window(0, 5, 4)[0], small[0][:, 3:7])  # clamped
    np.testing.assert_array_equal(X.window(0, -3, 4)[0], small[0][:, :4])
    short = X.window(1, 0, 8)[0]  # 3 frames repeated: 0 1 2 0 1 2 0 1
    np.testing.assert_array_equal(short, small[1][:, [0, 1, 2, 0, 1, 2, 0, 1]])
    np.testing.assert_array_equal(X.window(3, 0, 3)[0], np.repeat(small[3], 3, axis=1))
    batch = X.windows([0, 1, 2, 4], [1, 0, 9, 0], 3)
    assert batch.shape == (4, 1, 4, 3) and batch.dtype == np.float32
    for k, (i, s) in enumerate([(0, 1), (1, 0), (2, 9), (4, 0)]):
        np.testing.assert_array_equal(batch[k], X.window(i, s, 3))
    padded = X.to_padded()
    assert padded.shape == (5, 1, 4, 12)
    np.testing.assert_array_equal(padded[2, 0], small[2])


def test_with_affine_composes_and_copies_nothing(small):
    X = ClipFeatures(small)
    scale, offset = np.arange(1, 5, dtype=np.float32), np.full(4, 0.5, np.float32)
    Y = X.with_affine(scale, offset)
    assert Y._store[0, 0] is X._store[0, 0]  # shared storage
    np.testing.assert_allclose(Y[0][0], small[0] * scale[:, None] + 0.5, rtol=1e-6)
    Z = Y.with_affine(np.full(4, 2.0), np.ones(4))
    np.testing.assert_allclose(
        Z.window(2, 3, 5)[0],
        (small[2][:, 3:8] * scale[:, None] + 0.5) * 2 + 1,
        rtol=1e-5,
    )
    np.testing.assert_array_equal(X[0][0], small[0])  # the parent is untouched


def test_variants(small):
    more = [
        [a + 100, a[:, :-1] - 100] if a.shape[1] > 1 else [a + 100, a - 100]
        for a in small
    ]
    X = ClipFeatures(small, variants=more)
    assert X.n_variants == 3 and "3 variants" in repr(X)
    assert X.variant_frames[:, 0].tolist() == X.n_frames.tolist()
    assert X.variant_frames[0].tolist() == [7, 7, 6]
    np.testing.assert_array_equal(X.clip(2, variant=1)[0], small[2] + 100)
    np.testing.assert_array_equal(X.window(0, 6, 2, variant=2)[0], more[0][1][:, 4:6])
    batch = X.windows([0, 0, 0], [1, 1, 1], 3, variants=[0, 1, 2])
    np.testing.assert_array_equal(batch[1, 0], small[0][:, 1:4] + 100)
    sub = X[[2, 0]].with_affine(np.ones(4), np.zeros(4))
    assert sub.n_variants == 3 and sub.variant_frames[1].tolist() == [7, 7, 6]
    again = pickle.loads(pickle.dumps(sub))
    np.testing.assert_array_equal(again.clip(0, 2), sub.clip(0, 2))
    with pytest.raises(IndexError):
        X.window(0, 0, 2, variant=3)


def test_select_variants_keeps_the_clip_and_the_chosen_variants(small):
    more = [[a + 100, a - 100, a * 0 + 7] for a in small]
    X = ClipFeatures(small, variants=more)[[2, 0]].with_affine(np.ones(4), np.ones(4))
    picked = X.select_variants([3, 1])
    assert picked.n_variants == 3 and len(picked) == 2
    np.testing.assert_array_equal(picked.clip(0), X.clip(0))  # the clip, first
    np.testing.assert_array_equal(picked.clip(0, 1), X.clip(0, 3))
    np.testing.assert_array_equal(picked.clip(1, 2), X.clip(1, 1))
    assert picked.variant_frames.tolist() == X.variant_frames[:, [0, 3, 1]].tolist()
    assert X.n_variants == 4  # the parent is untouched
    assert X.select_variants([]).n_variants == 1
    for bad in ([0], [4], [-1]):
        with pytest.raises(IndexError, match="variants must lie in 1..3"):
            X.select_variants(bad)


# -- the transformer with duration=None ---------------------------------------


def test_ragged_shapes_are_the_real_lengths(ragged, tmp_path):
    for memory in (None, tmp_path / "cache"):
        X = MFCCTransformer(duration=None, memory=memory).fit_transform(ragged)
        assert isinstance(X, ClipFeatures) and X.shape == (len(ragged),)
        assert X.on_disk == (memory is not None) and X.n_variants == 1
        assert X.n_frames.tolist() == [real_frames(p) for p in ragged]
        assert X.n_frames[2] == 1  # 110 samples, shorter than one FFT window
        assert X.n_frames[0] == 1 + int(2.5 * 22050) // HOP
        for i, path in enumerate(ragged):
            np.testing.assert_allclose(
                X[i][0], compute_mfcc(load_audio(path)), atol=1e-5
            )


def test_ragged_equals_dense_of_the_same_length(ragged):
    path = ragged[0]  # 2.5 s
    dense = MFCCTransformer(duration=2.5).fit_transform([path])
    clips = MFCCTransformer(duration=None).fit_transform([path])
    np.testing.assert_allclose(clips.to_padded(), dense, atol=1e-6)
    # offset still skips the start
    late = MFCCTransformer(duration=None, offset=1.0).fit_transform([path])
    assert (
        late.n_frames[0] == real_frames(path, offset=1.0) == 1 + int(1.5 * 22050) // HOP
    )
    np.testing.assert_allclose(
        late[0][0], compute_mfcc(load_audio(path, offset=1.0)), atol=1e-5
    )


def test_cache_key_of_existing_settings_unchanged(tmp_path):
    import hashlib
    import json

    old = {
        "sr": 22050,
        "n_mfcc": 20,
        "n_fft": 2048,
        "hop_length": 512,
        "n_mels": 128,
        "duration": 28.56,
        "offset": 0.0,
    }
    blob = json.dumps({"version": 1, **old}, sort_keys=True).encode()
    digest = hashlib.sha256(blob).hexdigest()[:16]
    assert digest == "b8c036172b643023"
    folder = _mfcc_cache.cache_dir(str(tmp_path), MFCCTransformer()._params())
    assert os.path.basename(folder) == f"v1-{digest}"
    wrap = MFCCTransformer(duration=3.0, pad="wrap")._params()
    assert (
        os.path.basename(_mfcc_cache.cache_dir(str(tmp_path), wrap))
        == "v1-cd8387783b140f51"
    )
    names = {
        os.path.basename(
            _mfcc_cache.cache_dir(str(tmp_path), MFCCTransformer(**kw)._params())
        )
        for kw in (
            {},
            {"duration": None},
            {"duration": None, "normalize": "cmvn"},
            {"duration": None, "normalize": "tilt"},
            {"duration": None, "features": "logmel"},
        )
    }
    assert len(names) == 5
    # the tilt's maths is versioned in its key
    tilt = MFCCTransformer(duration=None, normalize="tilt")._params()
    assert tilt["tilt_version"] == _mfcc.TILT_VERSION


def test_cache_hit_second_time_and_references(ragged, tmp_path, count_loads):
    t = MFCCTransformer(duration=None, memory=tmp_path)
    first = t.transform(ragged)
    assert sorted(count_loads) == sorted(ragged)
    count_loads.clear()
    second = t.transform(ragged + ragged[:2])
    assert count_loads == []  # every entry checked and referenced, none decoded
    assert all(isinstance(s, str) for s in second._store[:, 0])
    for i in range(len(ragged)):
        np.testing.assert_array_equal(second[i], first[i])
    np.testing.assert_array_equal(second[len(ragged)], first[0])


def test_damaged_entry_of_variable_width_is_recomputed(ragged, tmp_path, count_loads):
    t = MFCCTransformer(duration=None, memory=tmp_path)
    X = t.transform(ragged[:2])
    entry = X._store[0, 0]
    raw = bytearray(open(entry, "rb").read())
    raw[-3] ^= 0xFF
    open(entry, "wb").write(bytes(raw))
    count_loads.clear()
    with pytest.warns(
        RuntimeWarning, match="is damaged .*checksum mismatch.*recomputing"
    ):
        Y = t.transform(ragged[:2])
    assert count_loads == [ragged[0]]
    np.testing.assert_allclose(Y[0][0], compute_mfcc(load_audio(ragged[0])), atol=1e-5)


def test_removed_entry_is_named(ragged, tmp_path):
    X = MFCCTransformer(duration=None, memory=tmp_path).transform(ragged[:3])
    entry = X._store[1, 0]
    os.remove(entry)
    X[0]  # the others still read
    with pytest.raises(
        OSError, match=f"MFCC cache entry {entry} cannot be read.*again"
    ):
        X.window(1, 0, 10)


def test_unwritable_cache_keeps_features_in_memory(ragged, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot be created"):
        X = MFCCTransformer(duration=None, memory=blocker).transform(ragged[:2])
    assert not X.on_disk and X.n_frames.tolist() == [real_frames(p) for p in ragged[:2]]


def test_failures_listed(ragged, tmp_path):
    from genreclf.features import FeatureExtractionError, find_bad_files

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    t = MFCCTransformer(duration=None, memory=tmp_path / "c")
    with pytest.raises(FeatureExtractionError, match="empty.wav"):
        t.transform([ragged[0], str(empty)])
    assert find_bad_files([ragged[0], str(empty)], t) == {
        str(empty): "empty file (0 bytes)"
    }


def test_sklearn_indexing_folds_and_pickling(ragged, tmp_path):
    t = MFCCTransformer(duration=None, memory=tmp_path)
    X = t.fit_transform(ragged)
    assert t.n_frames_ is None
    idx = np.array([5, 1, 3])
    assert _safe_indexing(X, idx).n_frames.tolist() == X.n_frames[idx].tolist()
    mask = np.zeros(len(X), bool)
    mask[[0, 4]] = True
    assert _safe_indexing(X, mask).n_frames.tolist() == X.n_frames[mask].tolist()
    y = np.array([0, 1, 0, 1, 0, 1])
    for train, _ in StratifiedKFold(3).split(np.zeros(len(y)), y):
        part = X[train]
        assert (
            len(part) == len(train)
            and part.n_frames.tolist() == X.n_frames[train].tolist()
        )
    for train, _ in KFold(2).split(X):
        np.testing.assert_array_equal(X[train][0], X[int(train[0])])
    # pickled: references, not features, and no open maps
    X.window(0, 0, 5)
    assert X._maps
    blob = pickle.dumps(X)
    assert len(blob) < 4000
    again = pickle.loads(blob)
    assert not again._maps
    np.testing.assert_array_equal(again.window(3, 2, 20), X.window(3, 2, 20))
    # a fitted pipeline's steps hold no features
    pipe = make_pipeline(
        MFCCTransformer(duration=None, memory=tmp_path), MFCCStandardizer()
    )
    pipe.fit(ragged)
    assert len(pickle.dumps(pipe)) < 5000
    restored = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(
        restored.transform(ragged).window(0, 3, 7),
        pipe.transform(ragged).window(0, 3, 7),
    )


def test_transform_with_a_cache_does_not_hold_the_features(tmp_path, write_audio):
    # 80 clips of 8 s, 128 log-mel rows: 345 frames x 128 x 4 bytes = 177 kB each
    paths = [
        str(write_audio(tmp_path / f"c{i}.wav", "noise", 22050, 8.0, seed=i))
        for i in range(80)
    ]
    t = MFCCTransformer(duration=None, features="logmel", memory=tmp_path / "cache")
    t.transform(paths[:1])  # warm the kernel and the imports

    def peak_of(part):
        tracemalloc.start()
        X = t.transform(part)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert X.on_disk
        return peak, int(X.n_frames.sum()) * 128 * 4

    few, _ = peak_of(paths[1:6])
    computed, total = peak_of(paths)
    cached, _ = peak_of(paths)
    assert total > 14e6
    # one clip's waveform and work space at a time: not growing with the clips
    assert computed < 1.3 * few and computed < total / 2, (few, computed, total)
    # cached: each entry checked, then only its name kept
    assert cached < total / 10, (cached, total)


def test_ten_minute_track_in_bounded_memory(tmp_path):
    import soundfile as sf

    n = 22050 * 600
    t = np.arange(n, dtype=np.float32) / 22050
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    del t
    path = tmp_path / "long.wav"
    sf.write(path, y, 22050, subtype="PCM_16")
    compute_mfcc(y[:4096])  # warm
    y = sf.read(path, dtype="float32")[0]  # as decoded: 16-bit
    tracemalloc.start()
    mfcc = compute_mfcc(y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert mfcc.shape == (20, 1 + n // HOP)
    # besides the waveform: its mel spectrogram (13 MB) and one block, not
    # a padded copy of the track (53 MB) and a second spectrogram
    assert peak < 24e6, peak
    del y
    X = MFCCTransformer(duration=None, memory=tmp_path / "cache").transform([str(path)])
    assert X.n_frames.tolist() == [1 + n // HOP]
    np.testing.assert_allclose(
        X.window(0, 20000, 100)[0], mfcc[:, 20000:20100], atol=1e-5
    )


# -- standardizer on ClipFeatures ----------------------------------------------


def test_standardizer_streams_over_clips_like_the_dense_path(small):
    X = ClipFeatures(small)
    frames = np.concatenate(small, axis=1)  # every frame weighs the same
    dense = frames[None, None]  # one "clip" of all the frames
    for kw in ({}, {"with_mean": False}, {"with_std": False}):
        ours = MFCCStandardizer(**kw).fit(X)
        ref = MFCCStandardizer(**kw).fit(dense)
        np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-10)
        assert ours.n_features_in_ == 1
        Xt = ours.transform(X)
        assert isinstance(Xt, ClipFeatures) and Xt._store[0, 0] is X._store[0, 0]
        np.testing.assert_allclose(
            np.concatenate([c[0] for c in Xt.iter_clips()], axis=1),
            ref.transform(dense)[0, 0],
            atol=1e-5,
        )
        back = ours.inverse_transform(Xt)
        np.testing.assert_allclose(back[2][0], small[2], atol=1e-5)
    scaled = MFCCStandardizer().fit_transform(X)
    allframes = np.concatenate([c[0] for c in scaled.iter_clips()], axis=1)
    np.testing.assert_allclose(allframes.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(allframes.std(axis=1), 1, atol=1e-5)


def test_standardizer_clips_errors(small):
    s = MFCCStandardizer().fit(ClipFeatures(small))
    with pytest.raises(
        ValueError, match="X has 2 coefficients per frame.*4 coefficients"
    ):
        s.transform(ClipFeatures([np.ones((2, 3))]))
    with pytest.raises(ValueError, match="0 clips"):
        MFCCStandardizer().fit(ClipFeatures([]))
    flat = MFCCStandardizer().fit(np.ones((5, 4)))
    with pytest.raises(ValueError, match="fitted on 2-D data"):
        flat.transform(ClipFeatures(small))


def test_pipeline_of_clips(ragged, tmp_path):
    pipe = make_pipeline(
        MFCCTransformer(duration=None, memory=tmp_path), MFCCStandardizer()
    )
    Xt = pipe.fit_transform(ragged)
    assert isinstance(Xt, ClipFeatures) and Xt.on_disk
    allframes = np.concatenate([c[0] for c in Xt.iter_clips()], axis=1)
    np.testing.assert_allclose(allframes.mean(axis=1), 0, atol=1e-4)


# -- normalize="cmvn" and features="logmel" -------------------------------------


def _music(seconds=3.0, sr=22050, seed=0):
    """A broadband test signal: harmonic notes, noise bursts and clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    for k, f0 in enumerate((110.0, 220.0, 330.0, 196.0)):
        env = (np.sin(2 * np.pi * (0.5 + 0.3 * k) * t) > 0).astype(float)
        for h in range(1, 12):
            y += env * np.sin(2 * np.pi * f0 * h * t) / h
    y += 0.2 * rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t) > 0.5)
    return (0.1 * y).astype(np.float32)


def test_cmvn_removes_a_fixed_equalisation(tmp_path):
    import scipy.signal
    import soundfile as sf

    y = _music()
    # a fixed channel: high shelf-like first-order filter plus -9 dB
    b, a = scipy.signal.butter(1, 2000, btype="highpass", fs=22050)
    eq = 0.35 * (0.3 * y + scipy.signal.lfilter(b, a, y)).astype(np.float32)
    sf.write(tmp_path / "a.wav", y, 22050, subtype="FLOAT")
    sf.write(tmp_path / "b.wav", eq, 22050, subtype="FLOAT")
    paths = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    raw = MFCCTransformer(duration=None).transform(paths)
    norm = MFCCTransformer(duration=None, normalize="cmvn").transform(paths)
    assert raw[0].shape == norm[0].shape
    # each coefficient of a cmvn clip: zero mean, unit variance over its frames
    np.testing.assert_allclose(norm[0][0].mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(norm[0][0].std(axis=1), 1, atol=1e-3)

    def rel(p, q):
        return np.linalg.norm(p - q) / np.linalg.norm(p)

    before = rel(raw[0][0], raw[1][0])
    after = rel(norm[0][0], norm[1][0])
    # measured: 0.51 without, 0.19 with
    assert after < 0.25 and after < before / 2, (before, after)
    # the same with a float duration (dense output)
    dense = MFCCTransformer(duration=3.0, normalize="cmvn").transform(paths)
    np.testing.assert_allclose(dense[:, 0].mean(axis=2), 0, atol=1e-4)


def _tilted(y, db_per_octave, sr=22050):
    """``y`` through a straight-line EQ of ``db_per_octave`` about 1 kHz."""
    spec = np.fft.rfft(y.astype(np.float64))
    octaves = np.log2(np.maximum(np.fft.rfftfreq(y.size, 1 / sr), 20.0) / 1000.0)
    return np.fft.irfft(spec * 10 ** (db_per_octave * octaves / 20), n=y.size)


def test_tilt_normalisation_removes_a_tilt_eq_and_keeps_the_timbre(tmp_path):
    import soundfile as sf

    # with a quiet noise floor in every band, as recordings have
    rng = np.random.default_rng(5)
    y = _music(seconds=6.0) + 0.003 * rng.standard_normal(6 * 22050)
    other = _music(seconds=6.0, seed=1)[::-1] + 0.003 * rng.standard_normal(6 * 22050)
    waves = {"a": y, "bright": _tilted(y, 6.0), "dull": _tilted(y, -6.0)}
    waves["other"] = np.convolve(other, np.ones(8) / 8, mode="same")  # duller music
    paths = []
    for name, wave in waves.items():
        sf.write(tmp_path / f"{name}.wav", wave.astype(np.float32), 22050, "FLOAT")
        paths.append(str(tmp_path / f"{name}.wav"))
    common = {"duration": None, "loudness": "rms", "n_mfcc": 40}
    raw = MFCCTransformer(**common).transform(paths)
    flat = MFCCTransformer(**common, normalize="tilt").transform(paths)
    assert flat[0][0].shape == raw[0][0].shape and flat[0][0].dtype == np.float32

    def distance(X, i, j):  # mean absolute difference of c1..c39
        return float(np.abs(X[i][0][1:] - X[j][0][1:]).mean())

    for k in (1, 2):  # +6 and -6 dB/octave
        # measured: 6.65 / 6.86 without, 0.42 / 0.46 with
        assert distance(flat, 0, k) < 0.1 * distance(raw, 0, k)
        assert distance(flat, 0, k) < 0.6
        # c0 too: the level goes with the slope (measured 76 / 186 without,
        # 0.4 / 5.2 with)
        c0_raw, c0_flat = (np.abs(X[0][0][0] - X[k][0][0]).mean() for X in (raw, flat))
        assert c0_flat < 0.05 * c0_raw
    # what is not a tilt still tells clips apart (measured 13.3, 13.2 without)
    assert distance(flat, 0, 3) > 10 * distance(flat, 0, 1)


def test_tilt_normalisation_needs_mfccs_and_enough_bands(ragged):
    with pytest.raises(InvalidParameterError, match="needs features='mfcc'"):
        MFCCTransformer(normalize="tilt", features="logmel").transform(ragged[:1])
    with pytest.raises(ValueError, match="keeps 19 mel bands.*fewer than n_mfcc=20"):
        MFCCTransformer(normalize="tilt", n_mels=20).transform(ragged[:1])


def test_logmel_is_librosa_melspectrogram_in_db(ragged):
    librosa = pytest.importorskip("librosa")
    X = MFCCTransformer(duration=None, features="logmel", n_mels=64).transform(
        ragged[:2]
    )
    assert X.n_mfcc == 64
    for i in range(2):
        y = load_audio(ragged[i])
        ref = librosa.power_to_db(
            librosa.feature.melspectrogram(y=y, sr=22050, n_mels=64)
        )
        np.testing.assert_allclose(X[i][0], ref, atol=5e-3)
    dense = MFCCTransformer(duration=1.0, features="logmel").transform(ragged[:1])
    assert dense.shape == (1, 1, 128, 44)
    # and its DCT is the MFCC
    import scipy.fft

    mf = MFCCTransformer(duration=1.0).transform(ragged[:1])
    dct = scipy.fft.dct(dense[0, 0], axis=0, type=2, norm="ortho")[:20]
    np.testing.assert_allclose(dct, mf[0, 0], atol=1e-3)


# -- augmentation ---------------------------------------------------------------


def test_augment_only_in_fit_transform(ragged, tmp_path, count_loads):
    t = MFCCTransformer(duration=None, augment=2, augment_seed=3, memory=tmp_path)
    X = t.fit_transform(ragged)
    assert X.n_variants == 3 and X.variant_frames.shape == (len(ragged), 3)
    assert X.variant_frames[:, 0].tolist() == [real_frames(p) for p in ragged]
    assert all(isinstance(s, str) for s in X._store.flat)
    # a speed change of at most 6 % keeps the width within 6 % (+1 frame)
    widths = X.variant_frames.astype(float)
    assert np.all(
        np.abs(widths[:, 1:] / widths[:, :1] - 1) <= 0.065 + 1 / widths[:, :1]
    )
    for v in (1, 2):
        assert not np.allclose(X.clip(0, v)[0][:, :50], X.clip(0)[0][:, :50], atol=0.5)
    P = t.transform(ragged)  # prediction: the clips only
    assert P.n_variants == 1
    # cached: computed once (one decode per file), then nothing is decoded
    assert sorted(count_loads) == sorted(ragged)
    count_loads.clear()
    again = MFCCTransformer(
        duration=None, augment=1, augment_seed=3, memory=tmp_path
    ).fit_transform(ragged)
    assert count_loads == []
    np.testing.assert_array_equal(again.clip(4, 1), X.clip(4, 1))
    # in a pipeline, fit_transform (training) sees them and transform does not
    pipe = make_pipeline(t, MFCCStandardizer())
    assert pipe.fit_transform(ragged).n_variants == 3
    assert pipe.transform(ragged).n_variants == 1


def test_parallel_equals_sequential(ragged, tmp_path):
    kw = {"duration": None, "augment": 1, "augment_seed": 2}
    one = MFCCTransformer(**kw).fit_transform(ragged)
    two = MFCCTransformer(**kw, n_jobs=2, memory=tmp_path).fit_transform(ragged)
    assert two.on_disk and two.n_variants == 2
    np.testing.assert_array_equal(two.variant_frames, one.variant_frames)
    for i in range(len(ragged)):
        for v in (0, 1):
            np.testing.assert_allclose(two.clip(i, v), one.clip(i, v), atol=1e-5)


def test_augment_is_seeded_and_same_without_cache(ragged, tmp_path):
    cached = MFCCTransformer(duration=None, augment=1, augment_seed=5, memory=tmp_path)
    plain = MFCCTransformer(duration=None, augment=1, augment_seed=5)
    other = MFCCTransformer(duration=None, augment=1, augment_seed=6)
    A, B, C = (m.fit_transform(ragged[:2]) for m in (cached, plain, other))
    assert not B.on_disk
    np.testing.assert_array_equal(A.clip(0, 1), B.clip(0, 1))
    assert A.variant_frames[0, 1] != C.variant_frames[0, 1] or not np.allclose(
        A.clip(0, 1), C.clip(0, 1)
    )


def test_augment_gives_the_same_variants_wherever_the_files_lie(ragged, tmp_path):
    # The variants' generators are seeded by a file's content, not its path:
    # the same clips copied to another folder (another clone, another
    # machine) give the same training data, hence the same model.
    import shutil

    moved = []
    for k, path in enumerate(ragged[:3]):
        folder = tmp_path / f"elsewhere{k}"
        folder.mkdir()
        moved.append(shutil.copy(path, folder / f"renamed{k}{Path(path).suffix}"))
    kw = {"duration": None, "augment": 2, "augment_seed": 4}
    here = MFCCTransformer(**kw).fit_transform(ragged[:3])
    there = MFCCTransformer(**kw).fit_transform(moved)
    np.testing.assert_array_equal(there.variant_frames, here.variant_frames)
    for i in range(3):
        for v in (1, 2):
            np.testing.assert_array_equal(there.clip(i, v), here.clip(i, v))
    # different files still get different generators
    ids = {_augment.content_id(path) for path in ragged}
    assert len(ids) == len(ragged)
    first = [_augment.variant_rng(4, 1, i).random() for i in sorted(ids)]
    assert len(set(first)) == len(first)


def test_production_changes_do_what_they_say():
    y = _music(4.0)
    sr = 22050
    base = compute_mfcc(y)
    # gain moves c0 only (by 20 log10(g) dB times sqrt(n_mels), orthonormal DCT)
    loud = compute_mfcc(y * np.float32(10 ** (6 / 20)))
    np.testing.assert_allclose((loud - base)[1:], 0, atol=0.05)
    assert abs(np.median(loud[0] - base[0]) - 6 * np.sqrt(128)) < 1.0
    # speed: length and frequencies scale together
    fast = _augment.change_speed(y, 1.05)
    assert abs(fast.size - y.size / 1.05) < 2
    # tempo alone: the length scales, a tone keeps its pitch
    sr_tone = np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr).astype(np.float32)
    stretched = _augment.stretch_tempo(sr_tone, 1.06)
    assert abs(stretched.size - sr_tone.size / 1.06) < 512
    peak = np.argmax(np.abs(np.fft.rfft(stretched))) * sr / stretched.size
    assert abs(peak - 440) < 2
    # tilt: +3 dB/octave makes 4 kHz 6 dB louder and 250 Hz 6 dB softer
    tone = (
        np.sin(2 * np.pi * 4000 * np.arange(sr) / sr)
        + np.sin(2 * np.pi * 250 * np.arange(sr) / sr)
    ).astype(np.float32)
    tilted = _augment.equalize(tone, sr, tilt=3.0)
    spec = np.abs(np.fft.rfft(tilted)) / np.abs(np.fft.rfft(tone)).max()
    assert abs(20 * np.log10(spec[4000]) - 6) < 0.2
    assert abs(20 * np.log10(spec[250]) + 6) < 0.2
    low = _augment.equalize(tone, sr, lowpass=1000.0)
    assert np.abs(np.fft.rfft(low))[4000] < 0.01 * np.abs(np.fft.rfft(tone))[4000]
    # noise at the SNR asked for
    rng = np.random.default_rng(0)
    noisy = _augment.add_noise(y, 20.0, rng)
    snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((noisy - y) ** 2))
    assert abs(snr - 20.0) < 0.3
    # an MP3 round trip keeps the length and is close to the original
    mp3 = _augment.reencode_mp3(y, sr, 0.5)
    assert mp3.size == y.size
    assert np.linalg.norm(compute_mfcc(mp3) - base) < 0.2 * np.linalg.norm(base)
    # a whole change: same generator, same result; valid waveform
    one = _augment.production_change(y, sr, _augment.variant_rng(0, 1, 7))
    two = _augment.production_change(y, sr, _augment.variant_rng(0, 1, 7))
    np.testing.assert_array_equal(one, two)
    assert one.dtype == np.float32 and np.isfinite(one).all()
    assert abs(one.size / y.size - 1) <= 0.061
    with pytest.raises(ValueError, match="recipe"):
        _augment.production_change(y, sr, _augment.variant_rng(0, 1, 7), "mixed")


def test_single_recipe_makes_one_change_of_every_kind(monkeypatch):
    """augment_recipe="single": each variant one change (and a gain), six kinds."""
    calls = []

    def record(name):
        def change(y, *args, **kwargs):
            if name == "equalize":  # which of its three changes
                tilt = args[1] if len(args) > 1 else kwargs.get("tilt", 0.0)
                lowpass = args[2] if len(args) > 2 else kwargs.get("lowpass")
                name_ = "tilt" if tilt else "lowpass" if lowpass else "highpass"
                calls[-1].append(name_)
            else:
                calls[-1].append(name)
            return y

        return change

    changes = ("change_speed", "stretch_tempo", "equalize", "add_noise", "reencode_mp3")
    for name in changes:
        monkeypatch.setattr(_augment, name, record(name))
    y = _music(1.0)
    for recipe in ("single", "stacked"):
        for variant in range(1, 121):
            calls.append([recipe])
            out = _augment.production_change(
                y, 22050, _augment.variant_rng(0, variant, 7), recipe
            )
            assert out.dtype == np.float32 and out.shape == y.shape
    single = [c[1:] for c in calls if c[0] == "single"]
    stacked = [c[1:] for c in calls if c[0] == "stacked"]
    assert all(len(c) == 1 for c in single)
    kinds = {c[0] for c in single}
    assert kinds == {
        "change_speed", "stretch_tempo", "tilt", "lowpass", "highpass", "add_noise",
        "reencode_mp3",
    }
    # the stacked recipe carries several changes in most variants
    assert np.mean([len(c) > 1 for c in stacked]) > 0.5


def test_augment_recipes_are_cached_apart(ragged, tmp_path):
    kw = {"duration": None, "augment": 1, "augment_seed": 4, "memory": tmp_path}
    single = MFCCTransformer(**kw).fit_transform(ragged[:3])
    stacked = MFCCTransformer(**kw, augment_recipe="stacked").fit_transform(ragged[:3])
    fresh = MFCCTransformer(
        duration=None, augment=1, augment_seed=4, augment_recipe="stacked"
    ).fit_transform(ragged[:3])
    for i in range(3):
        np.testing.assert_array_equal(single.clip(i, 0), stacked.clip(i, 0))
        np.testing.assert_allclose(stacked.clip(i, 1), fresh.clip(i, 1), atol=1e-5)
    assert any(
        single.variant_frames[i, 1] != stacked.variant_frames[i, 1]
        or not np.allclose(single.clip(i, 1), stacked.clip(i, 1))
        for i in range(3)
    )
    with pytest.raises(ValueError, match="augment_recipe"):
        MFCCTransformer(**kw, augment_recipe="mixed").fit_transform(ragged[:1])


class _OldTransformer(MFCCTransformer):
    """MFCCTransformer as pickled before ``augment_recipe`` existed."""

    def __reduce__(self):
        state = dict(self.__dict__)
        del state["augment_recipe"]
        return (MFCCTransformer.__new__, (MFCCTransformer,), state)


def test_a_transformer_pickled_before_augment_recipe_refits_stacked():
    old = pickle.loads(pickle.dumps(_OldTransformer(augment=2, duration=None)))
    assert type(old) is MFCCTransformer
    assert old.get_params()["augment_recipe"] == "stacked"
    assert old.get_params()["augment"] == 2
    assert MFCCTransformer().augment_recipe == "single"


# -- real recordings -------------------------------------------------------------


@pytest.mark.real_audio
def test_real_audio_ragged_lengths_and_standardized(real_audio_dir, tmp_path):
    exts = {".wav", ".mp3", ".flac", ".ogg", ".au"}
    paths = sorted(
        str(p) for p in real_audio_dir.rglob("*") if p.suffix.lower() in exts
    )
    assert len(paths) == 140
    pipe = make_pipeline(
        MFCCTransformer(duration=None, memory=tmp_path / "cache", n_jobs=2),
        MFCCStandardizer(),
    )
    X = pipe.fit_transform(paths)
    assert X.on_disk and X.shape == (140,)
    some = [0, 37, 71, 139]
    assert X.n_frames[some].tolist() == [real_frames(paths[i]) for i in some]
    assert X.n_frames.min() >= 1 and len(set(X.n_frames.tolist())) > 3
    for i in some:
        w = X.window(i, 0, 129)
        assert w.shape == (1, 20, 129) and np.isfinite(w).all()
    frames = np.concatenate([c[0] for c in X.iter_clips()], axis=1)
    np.testing.assert_allclose(frames.mean(axis=1), 0, atol=1e-3)
    np.testing.assert_allclose(frames.std(axis=1), 1, atol=1e-3)


def test_screening_no_file_at_all_with_real_length_clips(tmp_path):
    """`genreclf evaluate` screens an empty training list: no error, nothing bad."""
    from genreclf.features import MFCCTransformer, check_files

    for memory in (None, tmp_path / "cache"):
        mfcc = MFCCTransformer(duration=None, memory=memory)
        paths, y, bad = check_files([], [], on_error="skip", transformer=mfcc)
        assert len(paths) == 0 and len(y) == 0 and bad == {}
