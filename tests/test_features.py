"""genreclf.features: MFCCs, the cached transformer, the standardizer."""

import os
import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import genreclf._mfcc as mfcc_impl
from genreclf.audio import AudioLoadError, load_audio
from genreclf.exceptions import DatasetWarning
from genreclf.features import (
    DEFAULT_DURATION,
    FeatureExtractionError,
    MFCCStandardizer,
    MFCCTransformer,
    check_files,
    compute_mfcc,
    find_bad_files,
)

SHORT = 1.0  # seconds per clip in these tests: 44 frames at 22050 / 512


@pytest.fixture
def clips(audio_files):
    names = [
        "tone_22050_1ch.wav",
        "chirp_22050_1ch.flac",
        "noise_22050_1ch.ogg",
        "clicks_22050_1ch.mp3",
        "chirp_44100_2ch.mp3",
        "chirp_48000_6ch.wav",
        "chirp_8000_1ch.au"
        if "chirp_8000_1ch.au" in audio_files
        else "tone_22050_1ch.au",
    ]
    return [str(audio_files[n]) for n in names]


# -- MFCC numerics -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tone", "chirp", "noise", "clicks", "silence"])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"n_mfcc": 13, "n_fft": 1024, "hop_length": 256, "n_mels": 64},
        {"sr": 16000, "n_mfcc": 40, "n_fft": 512, "hop_length": 160, "n_mels": 40},
    ],
)
def test_compute_mfcc_matches_librosa(kind, params):
    librosa = pytest.importorskip("librosa")
    from conftest import synth_signal

    sr = params.get("sr", 22050)
    y = synth_signal(kind, sr, 2.0, 1)[:, 0]
    ours = compute_mfcc(y, **params)
    ref = librosa.feature.mfcc(y=y, **{"sr": 22050, **params})
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    # float32 throughout: agreement to a few thousandths of a dB
    np.testing.assert_allclose(ours, ref, rtol=0, atol=5e-3)


@pytest.mark.parametrize(
    "sr, n_fft, n_mels", [(22050, 2048, 128), (16000, 512, 40), (44100, 1024, 64)]
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels):
    librosa = pytest.importorskip("librosa")
    ours = mfcc_impl.mel_filterbank(sr, n_fft, n_mels)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)
    # the kernel's bands hold the whole filterbank: nothing is cut off
    kernel = mfcc_impl.MFCCKernel(sr, n_fft, 512, n_mels, min(20, n_mels))
    np.testing.assert_array_equal(kernel.filterbank(), ours)


@pytest.mark.parametrize("top_db", [80.0, 20.0])
def test_power_to_db_matches_librosa(top_db):
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    S = (rng.random((50, 64)) ** 8).astype(np.float32)
    S[0, :5] = 0.0  # below amin
    ref = librosa.power_to_db(S, top_db=top_db)
    ours = mfcc_impl.power_to_db(S.copy(), top_db=top_db)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)


def test_kernel_built_once_and_sent_to_workers(clips, tmp_path):
    import pickle as pkl

    kernel = mfcc_impl.kernel(22050, 2048, 512, 128, 20)
    assert mfcc_impl.kernel(22050, 2048, 512, 128, 20) is kernel
    # a worker gets it pickled, small, and computes the same MFCCs
    raw = pkl.dumps(kernel)
    assert len(raw) < 200_000
    y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    np.testing.assert_array_equal(pkl.loads(raw)(y), kernel(y))


def test_compute_mfcc_rejects_2d():
    with pytest.raises(ValueError, match="must be 1-D"):
        compute_mfcc(np.zeros((2, 100), np.float32))


def test_transformer_equals_librosa_pipeline(audio_files):
    librosa = pytest.importorskip("librosa")
    path = audio_files["chirp_44100_2ch.wav"]
    X = MFCCTransformer(duration=SHORT).transform([path])
    y, _ = librosa.load(path, sr=22050, duration=SHORT)
    ref = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=20)
    np.testing.assert_allclose(X[0, 0], ref, atol=5e-3)


# -- transformer shapes and API ----------------------------------------------------


def test_default_width_close_to_reference_study():
    t = MFCCTransformer()
    assert t.duration == DEFAULT_DURATION
    assert t.n_frames() == 1230
    assert t.fit().n_frames_ == 1230


def test_shapes_dtype_and_padding(clips, count_loads):
    t = MFCCTransformer(duration=SHORT)
    X = t.fit_transform(clips)
    assert X.shape == (len(clips), 1, 20, 44) and X.dtype == np.float32
    assert np.isfinite(X).all()
    # every clip is 1 s long: cropping to 0.5 s gives the first half's frames
    half = MFCCTransformer(duration=0.5).transform(clips[:1])
    assert half.shape == (1, 1, 20, 22)
    # a clip shorter than duration is padded with silence (-> constant MFCC tail)
    long = MFCCTransformer(duration=2.0).transform(clips[:1])
    tail = long[0, 0, :, 50:]
    np.testing.assert_allclose(tail, tail[:, :1].repeat(tail.shape[1], axis=1))


def test_wrap_padding_repeats_the_clip(clips, tmp_path):
    """pad="wrap" fills a short clip with itself: its statistics stay its own."""
    zeros = MFCCTransformer(duration=3 * SHORT).transform(clips[1:2])[0, 0]
    wrapped = MFCCTransformer(duration=3 * SHORT, pad="wrap", memory=tmp_path)
    X = wrapped.transform(clips[1:2])[0, 0]
    assert X.shape == zeros.shape == (20, 130)
    # the MFCCs of the clip's audio repeated to the duration
    y = load_audio(clips[1], sr=22050, duration=SHORT)
    expected = compute_mfcc(np.resize(y, int(3 * SHORT * 22050)))
    np.testing.assert_allclose(X, expected, atol=1e-3)
    # no silence: the wrapped tail is music, the zero-padded tail is constant
    assert X[:, 60:].std(axis=1).mean() > 10 * zeros[:, 60:].std(axis=1).mean()
    # a clip longer than duration is cropped the same way in both modes
    np.testing.assert_array_equal(
        MFCCTransformer(duration=0.5, pad="wrap").transform(clips[1:2]),
        MFCCTransformer(duration=0.5).transform(clips[1:2]),
    )
    with pytest.raises(ValueError, match=r"'pad' parameter .* among \{.*'zeros'"):
        MFCCTransformer(pad="reflect").fit()


def test_rms_loudness_makes_features_gain_invariant(tmp_path):
    """loudness="rms": the same music 12 dB softer gives the same MFCCs."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(0.8 * 22050)) / 22050
    y = (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    ) + 0.02 * rng.standard_normal(t.size).astype(np.float32)
    loud, soft = tmp_path / "loud.wav", tmp_path / "soft.wav"
    sf.write(loud, y, 22050, subtype="FLOAT")
    sf.write(soft, y / 4, 22050, subtype="FLOAT")  # -12 dB
    paths = [str(loud), str(soft)]
    plain = MFCCTransformer(duration=SHORT).transform(paths)[:, 0]
    # without it, a gain moves c0 (by its dB x sqrt(128 mel bands)) and only c0
    shift = 20 * np.log10(4) * np.sqrt(128)
    np.testing.assert_allclose(plain[0, 0] - plain[1, 0], shift, rtol=1e-4)
    np.testing.assert_allclose(plain[0, 1:], plain[1, 1:], atol=1e-2)
    for pad in ("zeros", "wrap"):
        X = MFCCTransformer(duration=SHORT, loudness="rms", pad=pad).transform(paths)
        np.testing.assert_allclose(X[0], X[1], atol=1e-2)
    # a silent clip stays silent (no division by zero)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(2205, np.float32), 22050)
    X = MFCCTransformer(duration=0.1, loudness="rms").transform([str(silent)])
    assert np.isfinite(X).all()
    with pytest.raises(ValueError, match=r"'loudness' parameter .* None or a str"):
        MFCCTransformer(loudness="peak").fit()


def _tilted(y, sr, db_per_octave, pivot_hz):
    """``y`` through an EQ of ``db_per_octave`` about ``pivot_hz``."""
    spec = np.fft.rfft(y.astype(np.float64))
    octaves = np.log2(np.maximum(np.fft.rfftfreq(y.size, 1 / sr), 20.0) / pivot_hz)
    out = np.fft.irfft(spec * 10 ** (db_per_octave * octaves / 20), n=y.size)
    return out.astype(np.float32)


def test_band_loudness_is_gain_invariant_and_a_bass_boost_lowers_nothing(tmp_path):
    """loudness="bands": the level is measured on the bands, not on the power.

    A bass boost raises the power, so loudness="rms" lowers every band to keep
    it; with "bands" the bands' mean level stays put whatever the pivot.
    """
    import soundfile as sf

    from genreclf import _mfcc

    sr = 22050
    rng = np.random.default_rng(1)
    t = np.arange(2 * sr) / sr
    y = 0.05 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 110 * t)
    y = y.astype(np.float32)
    versions = {
        "plain": y,
        "soft": y / 4,
        "boost": _tilted(y, sr, -6.0, 1000.0),
        "boost at 3 kHz": _tilted(y, sr, -6.0, 3000.0) / 8,
    }
    paths = []
    for name, wave in versions.items():
        paths.append(str(tmp_path / f"{name}.wav"))
        sf.write(paths[-1], wave, sr, subtype="FLOAT")
    c0 = {}
    for mode in ("rms", "bands"):
        X = MFCCTransformer(duration=None, loudness=mode).transform(paths)
        c0[mode] = [float(x[0, 0].mean()) / np.sqrt(128) for x in X]  # mean dB
        np.testing.assert_allclose(X[0], X[1], atol=1e-2)  # a gain: nothing
    # the bass boost: rms drops the mean band level by many dB, bands do not
    assert c0["rms"][0] - c0["rms"][2] > 8.0
    assert abs(c0["bands"][0] - c0["bands"][2]) < 3.0
    # a tilt about another frequency is that tilt plus a gain: the same output
    X = MFCCTransformer(duration=None, loudness="bands").transform(paths[2:])
    np.testing.assert_allclose(X[0], X[1], atol=0.05)
    # the kept bands end at BAND_LEVEL_DB
    keep = _mfcc.tilt_bands(sr, 128)[0]
    mel = np.abs(np.fft.rfft(y[:2048])) ** 2  # any mel power will do
    bank = _mfcc.mel_filterbank(sr, 2048, 128)
    power = np.tile(bank @ mel.astype(np.float32), (5, 1))
    power *= _mfcc.band_level_gain(power, keep)
    level = np.mean(10 * np.log10(power[:, keep].mean(axis=0)))
    np.testing.assert_allclose(level, _mfcc.BAND_LEVEL_DB, atol=1e-3)
    silent = np.zeros((4, 128), np.float32)
    assert _mfcc.band_level_gain(silent, keep) == 1.0


def test_offset_changes_output(clips):
    a = MFCCTransformer(duration=0.5).transform(clips[1:2])
    b = MFCCTransformer(duration=0.5, offset=0.25).transform(clips[1:2])
    assert a.shape == b.shape and not np.allclose(a, b)


def test_duplicates_decoded_once_and_order_kept(clips, count_loads):
    X = MFCCTransformer(duration=SHORT).transform([clips[1], clips[0], clips[1]])
    assert len(count_loads) == 2
    np.testing.assert_array_equal(X[0], X[2])
    assert not np.array_equal(X[0], X[1])


def test_accepts_paths_series_and_column(clips):
    pd = pytest.importorskip("pandas")
    from pathlib import Path

    t = MFCCTransformer(duration=0.25)
    ref = t.transform(clips[:2])
    np.testing.assert_array_equal(t.transform([Path(p) for p in clips[:2]]), ref)
    np.testing.assert_array_equal(t.transform(pd.Series(clips[:2])), ref)
    np.testing.assert_array_equal(t.transform(np.array(clips[:2])[:, None]), ref)
    # issue 15: an empty list is refused in the user's terms (it used to give an
    # array of shape (0, 1, 20, 11) that a later step reported)
    with pytest.raises(ValueError, match="no audio files given"):
        t.transform([])


@pytest.mark.parametrize("duration", [SHORT, None])
@pytest.mark.parametrize("empty", [[], (), np.array([], dtype=object)], ids=repr)
def test_empty_list_of_files_is_refused(duration, empty):
    t = MFCCTransformer(duration=duration)
    with pytest.raises(ValueError, match="no audio files given.*to train on"):
        t.fit(empty)
    with pytest.raises(ValueError, match="no audio files given.*to train on"):
        t.fit_transform(empty)
    with pytest.raises(ValueError, match="no audio files given.*features of"):
        t.transform(empty)
    assert t.fit().n_frames_ == t.n_frames()  # fit(None) checks the parameters
    with pytest.raises(ValueError, match="'n_mfcc' parameter"):  # parameters first
        MFCCTransformer(n_mfcc=0).transform(empty)


def test_pipeline_refuses_an_empty_list_to_fit_and_predict(clips):
    """Issue 15: the error came from MFCCStandardizer about a (0, 1, 40, 44) array."""
    from genreclf.pipeline import build_pipeline

    pipe = build_pipeline(
        "reference", duration=SHORT, filters=(4,), dense=8, max_epochs=1,
        valid_size=0, n_members=1, random_state=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match="no audio files given") as err:
        pipe.fit([], [])
    assert "MFCCStandardizer" not in str(err.value) and "shape" not in str(err.value)
    pipe.fit(clips[:4], ["a", "b", "a", "b"])
    with pytest.raises(ValueError, match="no audio files given") as err:
        pipe.predict([])
    assert "MFCCStandardizer" not in str(err.value) and "shape" not in str(err.value)
    with pytest.raises(ValueError, match="no audio files given"):
        pipe.predict_proba(np.array([], dtype=object))
    assert pipe.predict(clips[:1]).shape == (1,)


@pytest.mark.parametrize(
    "X, error, message",
    [
        ("one.wav", ValueError, "got a single path"),
        ([["a.wav", "b.wav"]], ValueError, "1-D array-like of file paths"),
        ([1, 2], TypeError, "must hold file paths"),
    ],
)
def test_bad_X(X, error, message):
    with pytest.raises(error, match=message):
        MFCCTransformer().transform(X)


_MUST = r"The '{}' parameter of MFCCTransformer must be "


@pytest.mark.parametrize(
    "params, message",
    [
        ({"sr": 0}, _MUST.format("sr") + r"an int in the range \[1, inf\)"),
        ({"n_mfcc": 2.5}, _MUST.format("n_mfcc") + r"an int in the range \[1, inf\)"),
        ({"hop_length": True}, _MUST.format("hop_length") + r"an int .*not a bool"),
        (
            {"duration": 0},
            _MUST.format("duration") + r"None or a float in the range \(0",
        ),
        (
            {"duration": "all"},
            _MUST.format("duration") + "None or a float in the range",
        ),
        ({"duration": float("inf")}, _MUST.format("duration") + ".*Got inf"),
        ({"duration": True}, _MUST.format("duration") + ".*not a bool"),
        ({"offset": -1}, _MUST.format("offset") + r"a float in the range \[0"),
        ({"n_mfcc": 40, "n_mels": 20}, r"n_mfcc \(40\) cannot exceed n_mels"),
        ({"pad": "edge"}, _MUST.format("pad") + r"a str among \{.*'wrap'"),
        ({"loudness": "peak"}, _MUST.format("loudness") + r"None or a str among"),
        ({"memory": 3}, _MUST.format("memory") + r"None, an instance of 'str'.*cache"),
        ({"n_jobs": "all"}, _MUST.format("n_jobs") + r"None or an instance of 'int'"),
        (
            {"normalize": "pcen"},
            _MUST.format("normalize") + r"None or a str among.*cmvn",
        ),
        ({"features": "stft"}, _MUST.format("features") + r"a str among.*logmel"),
        ({"augment": -1}, _MUST.format("augment") + r"an int in the range \[0, inf\)"),
        ({"augment": True, "duration": None}, _MUST.format("augment") + ".*not a bool"),
        ({"augment_seed": 1.5}, _MUST.format("augment_seed") + r"an int in the range"),
        ({"augment": 2}, r"'augment' parameter of MFCCTransformer needs duration=None"),
    ],
)
def test_bad_parameters(clips, params, message):
    from sklearn.utils._param_validation import InvalidParameterError

    t = MFCCTransformer(**params)
    with pytest.raises(InvalidParameterError, match=message):
        t.fit(clips)
    # transform needs no fit, and validates as well
    with pytest.raises(InvalidParameterError, match=message):
        MFCCTransformer(**params).transform(clips)


def test_fit_returns_self_clone_params_pickle(tmp_path, clips):
    t = MFCCTransformer(duration=SHORT, memory=joblib.Memory(tmp_path, verbose=0))
    assert t.fit(clips) is t
    c = clone(t)
    assert c.get_params()["duration"] == SHORT and not hasattr(c, "n_frames_")
    c.set_params(n_mfcc=13, hop_length=256)
    assert c.fit().n_frames_ == 87
    assert c.transform(clips[:1]).shape == (1, 1, 13, 87)
    again = pickle.loads(pickle.dumps(t))
    np.testing.assert_array_equal(again.transform(clips[:2]), t.transform(clips[:2]))
    assert MFCCTransformer().__sklearn_tags__().requires_fit is False


def test_in_a_pipeline(clips):
    pipe = make_pipeline(MFCCTransformer(duration=SHORT), MFCCStandardizer())
    Xt = pipe.fit_transform(clips)
    assert Xt.shape == (len(clips), 1, 20, 44) and Xt.dtype == np.float32
    np.testing.assert_allclose(Xt.mean(axis=(0, 1, 3)), 0, atol=1e-4)


def test_parallel_equals_sequential(clips, tmp_path):
    seq = MFCCTransformer(duration=SHORT, n_jobs=1).transform(clips)
    par = MFCCTransformer(duration=SHORT, n_jobs=2, memory=tmp_path).transform(clips)
    # BLAS thread counts differ between workers and here: float32 rounding only
    np.testing.assert_allclose(seq, par, rtol=1e-5, atol=1e-4)
    # the workers filled the cache
    entries = list((tmp_path / "genreclf-mfcc").glob("*/*.mfcc"))
    assert len(entries) == len(clips)


def test_progress_bar(clips, capsys):
    MFCCTransformer(duration=0.25, verbose=1).transform(clips[:3])
    assert "MFCC" in capsys.readouterr().err


# -- cache ---------------------------------------------------------------------


def test_cache_hit_decodes_nothing(tmp_path, clips, count_loads):
    t = MFCCTransformer(duration=SHORT, memory=tmp_path / "cache")
    first = t.transform(clips)
    assert len(count_loads) == len(clips)
    second = t.transform(clips)
    assert len(count_loads) == len(clips)  # nothing decoded again
    np.testing.assert_array_equal(first, second)
    # a fresh transformer on the same folder, and a joblib.Memory, reuse it too
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    third = MFCCTransformer(duration=SHORT, memory=memory).transform(clips)
    assert len(count_loads) == len(clips)
    np.testing.assert_array_equal(first, third)


def test_no_cache_without_memory(clips, count_loads):
    t = MFCCTransformer(duration=SHORT)
    t.transform(clips[:2])
    t.transform(clips[:2])
    assert len(count_loads) == 4


def test_edited_file_is_recomputed(tmp_path, write_audio, count_loads):
    path = write_audio(tmp_path / "song.wav", "tone", 22050, 1.0)
    t = MFCCTransformer(duration=SHORT, memory=tmp_path / "cache")
    before = t.transform([path])
    write_audio(path, "noise", 22050, 1.0)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a later mtime
    after = t.transform([path])
    assert len(count_loads) == 2
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(
        after, MFCCTransformer(duration=SHORT).transform([path])
    )


@pytest.mark.parametrize(
    "change",
    [
        {"sr": 16000},
        {"n_mfcc": 13},
        {"n_fft": 1024},
        {"hop_length": 256},
        {"n_mels": 64},
        {"duration": 0.75},
        {"offset": 0.1},
        {"pad": "wrap", "duration": 2.0},
        {"loudness": "rms"},
        {"loudness": "bands"},
    ],
)
def test_each_output_parameter_has_its_own_cache(tmp_path, clips, count_loads, change):
    base = MFCCTransformer(duration=SHORT, memory=tmp_path)
    ref = base.transform(clips[:2])
    changed = clone(base).set_params(**change)
    out = changed.transform(clips[:2])
    assert len(count_loads) == 4  # recomputed, not served from the first entries
    np.testing.assert_array_equal(
        out, clone(changed).set_params(memory=None).transform(clips[:2])
    )
    assert out.shape != ref.shape or not np.array_equal(out, ref)
    # parameters that do not change the output share the cache
    clone(base).set_params(n_jobs=1, verbose=0).transform(clips[:2])
    assert len(count_loads) == 6  # 2 + 2 + the 2 of the uncached reference


# -- failures --------------------------------------------------------------------


def test_failures_listed_and_good_files_cached(tmp_path, clips, count_loads):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    missing = tmp_path / "missing.flac"
    folder = tmp_path / "a folder"
    folder.mkdir()
    bad = [str(empty), str(text), str(missing), str(folder)]
    t = MFCCTransformer(duration=SHORT, memory=tmp_path / "cache")
    with pytest.raises(FeatureExtractionError) as info:
        t.transform(clips[:3] + bad)
    err = info.value
    assert isinstance(err, AudioLoadError) and isinstance(err, ValueError)
    assert list(err.failures) == bad
    assert err.failures[str(empty)] == "empty file (0 bytes)"
    assert "not an audio file (looks like text)" in err.failures[str(text)]
    assert err.failures[str(missing)] == "file not found"
    assert "is a directory" in err.failures[str(folder)]
    message = str(err)
    assert message.startswith("4 of 7 audio files could not be read")
    for path in bad:
        assert re.search(re.escape(path) + ": ", message)
    # the good clips were cached: extracting them again decodes nothing
    n = len(count_loads)
    t.transform(clips[:3])
    assert len(count_loads) == n
    assert pickle.loads(pickle.dumps(err)).failures == err.failures


def test_find_bad_files(tmp_path, clips, count_loads):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    t = MFCCTransformer(duration=SHORT, memory=tmp_path / "cache")
    assert find_bad_files(clips[:2] + [str(empty)], t) == {
        str(empty): "empty file (0 bytes)"
    }
    assert find_bad_files(clips[:2], t) == {}
    n = len(count_loads)
    t.fit(clips[:2]).transform(clips[:2])  # later fit/transform: no decoding
    assert len(count_loads) == n
    assert find_bad_files([str(empty)]) == {str(empty): "empty file (0 bytes)"}


# -- the bad-file screen: check_files ------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from genreclf.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("synthetic")
    return make_synthetic(out, n_per_genre=2, duration=1.0, random_state=0)


@pytest.fixture
def mixed_files(tmp_path, synthetic):
    paths, y = synthetic
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp3"
    text.write_text("not audio at all " * 20)
    missing = tmp_path / "missing.wav"
    files = [paths[0], str(empty), paths[5], str(text), str(missing), paths[9]]
    labels = [y[0], "bad1", y[5], "bad2", "bad3", y[9]]
    return files, np.array(labels, dtype=object), [str(empty), str(text), str(missing)]


def _transformer(tmp_path):
    return MFCCTransformer(duration=0.5, memory=str(tmp_path / "cache"))


def test_check_files_raise_lists_every_bad_file(tmp_path, mixed_files):
    files, labels, bad = mixed_files
    with pytest.raises(FeatureExtractionError, match=r"3 of 6 audio files") as info:
        check_files(files, labels, transformer=_transformer(tmp_path))
    assert set(info.value.failures) == set(bad)
    message = str(info.value)
    assert all(b in message for b in bad)
    assert "empty file" in info.value.failures[bad[0]]


def test_check_files_skip_keeps_alignment(tmp_path, mixed_files):
    files, labels, bad = mixed_files
    with pytest.warns(
        DatasetWarning, match=r"3 of 6 files cannot be read and are skipped"
    ):
        paths, y, failures = check_files(
            files, labels, on_error="skip", transformer=_transformer(tmp_path)
        )
    assert list(paths) == [files[0], files[2], files[5]]
    assert list(y) == [labels[0], labels[2], labels[5]]
    assert set(failures) == set(bad)


def test_check_files_all_good_and_cache_is_filled(tmp_path, synthetic):
    paths, y = synthetic
    transformer = _transformer(tmp_path)
    out_paths, out_y, bad = check_files(paths[:4], list(y[:4]), transformer=transformer)
    assert (
        bad == {} and list(out_paths) == list(paths[:4]) and list(out_y) == list(y[:4])
    )
    assert os.listdir(tmp_path / "cache")  # features were cached for the fit to come
    _, none_y, _ = check_files(paths[:2], transformer=transformer)
    assert none_y is None


def test_check_files_errors(tmp_path):
    with pytest.raises(ValueError, match="on_error must be one of"):
        check_files(["a.wav"], ["x"], on_error="ignore")
    with pytest.raises(ValueError, match="same length, got 2 paths and y of shape"):
        check_files(["a.wav", "b.wav"], ["x"])


# -- standardizer ------------------------------------------------------------------


@parametrize_with_checks([MFCCStandardizer(), MFCCStandardizer(with_mean=False)])
def test_standardizer_sklearn_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)


def test_standardizer_on_mfcc_images():
    rng = np.random.default_rng(0)
    loc = np.arange(20)[None, None, :, None] * 10.0
    X = (rng.normal(size=(6, 1, 20, 30)) * 3 + loc).astype(np.float32)
    s = MFCCStandardizer().fit(X)
    assert s.mean_.shape == (20,) and s.scale_.shape == (20,)
    np.testing.assert_allclose(s.mean_, np.arange(20) * 10.0, atol=1.0)
    Xt = s.transform(X)
    assert Xt.dtype == np.float32 and Xt.shape == X.shape
    np.testing.assert_allclose(Xt.mean(axis=(0, 1, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(Xt.std(axis=(0, 1, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(s.inverse_transform(Xt), X, rtol=1e-5, atol=1e-4)
    assert s.transform(X.astype(np.float64)).dtype == np.float64
    constant = np.ones((3, 1, 4, 5), np.float32)
    np.testing.assert_array_equal(MFCCStandardizer().fit_transform(constant), 0)


@pytest.mark.parametrize("name", ["with_mean", "with_std"])
def test_standardizer_bad_parameters(name):
    X = np.zeros((2, 1, 4, 5), np.float32)
    with pytest.raises(
        ValueError,
        match=rf"The '{name}' parameter of MFCCStandardizer must be an instance of "
        r"'bool'.*Got 'yes' instead",
    ):
        MFCCStandardizer(**{name: "yes"}).fit(X)


def test_standardizer_shape_mismatch():
    s = MFCCStandardizer().fit(np.zeros((2, 1, 20, 10), np.float32))
    with pytest.raises(ValueError, match="fitted on 4-D data with 20 coefficients"):
        s.transform(np.zeros((2, 1, 13, 10), np.float32))
    with pytest.raises(ValueError, match="fitted on 4-D data"):
        s.transform(np.zeros((2, 1), np.float32))


# -- real recordings -----------------------------------------------------------------


def _real_files(root):
    exts = {".wav", ".mp3", ".flac", ".ogg", ".au"}
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in exts)


@pytest.mark.real_audio
def test_real_audio_all_files_one_width_and_warm_run_decodes_nothing(
    real_audio_dir, tmp_path, count_loads
):
    paths = _real_files(real_audio_dir)
    assert len(paths) == 140
    t = MFCCTransformer(duration=3.0, memory=tmp_path / "cache", n_jobs=2)
    X = t.fit_transform(paths)
    assert X.shape == (140, 1, 20, t.n_frames_) and X.dtype == np.float32
    assert np.isfinite(X).all()
    # warm, in this process so that every decode would be counted: none happens
    X2 = t.set_params(n_jobs=1).transform(paths)
    np.testing.assert_array_equal(X, X2)
    assert count_loads == []
    # the counter does see decodes: a clip whose cache entry is gone is read again
    X3 = MFCCTransformer(duration=3.0, memory=tmp_path / "other").fit_transform(paths[:2])
    assert len(count_loads) == 2
    np.testing.assert_array_equal(X3, X[:2])


@pytest.mark.real_audio
def test_real_audio_fma_snippets_are_padded(real_audio_dir):
    folder = real_audio_dir / "fma" / "fma_small" / "000"
    snippets = [str(folder / "000010.mp3"), str(folder / "000141.mp3")]
    full = str(folder / "000002.mp3")
    t = MFCCTransformer(duration=4.0)
    X = t.transform(snippets + [full])
    assert X.shape == (3, 1, 20, t.n_frames())
    # 2 s of audio, then silence: the last second is constant, unlike the full clip
    for clip in X[:2, 0]:
        tail = clip[:, -40:]
        np.testing.assert_allclose(tail, tail[:, :1].repeat(40, axis=1))
    assert X[2, 0, :, -40:].std() > 1.0


@pytest.mark.real_audio
def test_real_audio_mp3_matches_librosa(real_audio_dir):
    librosa = pytest.importorskip("librosa")
    path = str(real_audio_dir / "fma" / "fma_small" / "000" / "000002.mp3")
    X = MFCCTransformer(duration=5.0).transform([path])
    y, _ = librosa.load(path, sr=22050, duration=5.0)
    ref = librosa.feature.mfcc(y=y, sr=22050)
    # the end differs slightly (resampler edge); compare the body
    np.testing.assert_allclose(X[0, 0, :, :-4], ref[:, :-4], atol=5e-2)
