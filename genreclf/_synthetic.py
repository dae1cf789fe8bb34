"""Sound engines of the synthetic demo dataset (see ``synthetic.make_synthetic``).

Numpy only. Each ``_synth_<genre>(rng, n, sr)`` returns ``n`` samples of one
generated style; :func:`synth_clip` adds the per-clip variation (tone colour,
gain, mixed noise) and :func:`write_audio` writes a file atomically.
"""

import wave

import numpy as np

from genreclf._files import atomic_write

#: Bump when a change to the engines alters the audio: cached clips are remade.
VERSION = 1
FORMATS = {"wav": None, "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}


def _hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _add(out, sig, start):
    """Add ``sig`` into ``out`` from sample ``start`` (clipped at both ends)."""
    start = int(round(start))
    if start < 0:
        sig, start = sig[-start:], 0
    end = min(len(out), start + len(sig))
    if end > start:
        out[start:end] += sig[: end - start]


def _t(n, sr):
    return np.arange(int(n)) / sr


def _osc(freq, n, sr, kind="sine"):
    """Return an oscillator; ``freq`` is a number or ``n`` frequencies."""
    phase = np.cumsum(np.broadcast_to(freq, (int(n),))) / sr
    if kind == "sine":
        return np.sin(2 * np.pi * phase)
    if kind == "saw":
        return 2.0 * (phase % 1.0) - 1.0
    if kind == "square":
        return np.where(phase % 1.0 < 0.5, 1.0, -1.0)
    return 4.0 * np.abs((phase % 1.0) - 0.5) - 1.0  # triangle


def _lowpass(x, sr, cutoff, order=2):
    """Smooth low-pass by scaling the spectrum (no phase distortion)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return np.fft.irfft(spec / np.sqrt(1 + (f / cutoff) ** (2 * order)), len(x))


def _kick(rng, sr):
    t = _t(0.35 * sr, sr)
    f = rng.uniform(45, 60) + rng.uniform(80, 150) * np.exp(-t / 0.03)
    return _osc(f, len(t), sr) * np.exp(-t / rng.uniform(0.08, 0.18))


def _snare(rng, sr):
    t = _t(0.25 * sr, sr)
    noise = rng.standard_normal(len(t)) * np.exp(-t / rng.uniform(0.04, 0.09))
    return 0.5 * noise + 0.6 * _osc(rng.uniform(160, 230), len(t), sr) * np.exp(
        -t / 0.04
    )


def _hat(rng, sr, tau=0.03):
    t = _t(6 * tau * sr, sr)
    return 0.6 * np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / tau)


def _pluck(freq, n, sr, rng, damping=0.996):
    """Karplus-Strong plucked string, computed a period at a time."""
    p = max(2, int(round(sr / freq)))
    n = int(n)
    y = np.zeros(n + p)
    y[:p] = rng.uniform(-1, 1, p)
    i = p
    while i < n + p:
        j = min(i + p, n + p)
        prev1 = y[i - p - 1 : j - p - 1] if i > p else np.r_[0.0, y[: j - p - 1]]
        y[i:j] = damping * 0.5 * (y[i - p : j - p] + prev1)
        i = j
    return y[:n]


def _grid(n, step, rng):
    """Event times (samples) every ``step``, starting at a random phase."""
    offset = rng.uniform(0, step)
    return np.arange(-offset, n, step), offset


def _synth_techno(rng, n, sr):
    beat = 60 / rng.uniform(122, 136) * sr
    out = np.zeros(n)
    kick, hat, clap = _kick(rng, sr), _hat(rng, sr, 0.02), _snare(rng, sr)
    root = rng.integers(33, 41)
    note = _osc(_hz(root), beat / 2, sr, "saw") * np.exp(-_t(beat / 2, sr) / 0.06)
    for k, pos in enumerate(_grid(n, beat, rng)[0]):
        _add(out, kick, pos)
        _add(out, 0.4 * hat, pos + beat / 2)
        _add(out, 0.3 * _lowpass(note, sr, rng.uniform(400, 1500)), pos + beat / 2)
        if k % 2:
            _add(out, 0.35 * clap, pos)
    return out


def _synth_hiphop(rng, n, sr):
    step = 60 / rng.uniform(80, 96) * sr / 4  # sixteenths
    swing = rng.uniform(0.0, 0.25) * step
    out = np.zeros(n)
    kick, snare, hat = _kick(rng, sr), _snare(rng, sr), _hat(rng, sr, 0.025)
    pattern = [
        {0, 7, 10},
        {0, 3, 8, 10},
        {0, 6, 9},
    ][rng.integers(3)]
    root = rng.integers(28, 36)
    sub = _osc(_hz(root), 0.6 * sr, sr) * np.exp(-_t(0.6 * sr, sr) / 0.25)
    for k, pos in enumerate(_grid(n, step, rng)[0]):
        s = k % 16
        pos = pos + (swing if s % 2 else 0)
        if s in pattern:
            _add(out, kick, pos)
            _add(out, 0.6 * sub, pos)
        if s in (4, 12):
            _add(out, 0.8 * snare, pos)
        if s % 2 == 0:
            _add(out, rng.uniform(0.15, 0.35) * hat, pos)
    return out


def _synth_ambient(rng, n, sr):
    out = np.zeros(n)
    t = _t(n, sr)
    root = rng.integers(45, 57)
    hop = int(rng.uniform(1.5, 3.0) * sr)
    window = np.hanning(2 * hop)
    for start in range(-hop, n, hop):
        chord = (
            root
            + rng.choice([0, 2, 5, 7, 9])
            + np.array([0, 4, 7, 11, 14])[: rng.integers(3, 6)]
        )
        pad = np.zeros(2 * hop)
        for f in _hz(chord):
            rate, depth = rng.uniform(3, 6), rng.uniform(0.002, 0.006)
            vib = f * (1 + depth * np.sin(2 * np.pi * rate * _t(2 * hop, sr)))
            phase = 2 * np.pi * np.cumsum(vib) / sr
            pad += np.sin(phase) + 0.3 * np.sin(2 * phase)
        _add(out, window * pad, start)
    wind = _lowpass(rng.standard_normal(n), sr, rng.uniform(200, 600))
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(3, 7) + rng.uniform(0, 6))
    return out * swell + 2.0 * wind


def _synth_folk(rng, n, sr):
    eighth = 60 / rng.uniform(90, 130) * sr / 2
    out = np.zeros(n)
    scale = rng.integers(55, 63) + np.array([0, 2, 4, 7, 9, 12, 14, 16])
    degree = rng.integers(len(scale))
    for k, pos in enumerate(_grid(n, eighth, rng)[0]):
        if k % 8 == 0:  # a strummed chord on every bar
            for j, m in enumerate(scale[[0, 2, 3]] - 12):
                _add(
                    out, 0.5 * _pluck(_hz(m), 4 * eighth, sr, rng), pos + j * 0.015 * sr
                )
        if rng.random() < 0.25:
            continue
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, len(scale) - 1))
        _add(out, _pluck(_hz(scale[degree]), 2 * eighth, sr, rng), pos)
    return out


def _synth_rock(rng, n, sr):
    beat = 60 / rng.uniform(100, 160) * sr
    out = np.zeros(n)
    kick, snare, hat = _kick(rng, sr), _snare(rng, sr), _hat(rng, sr, 0.04)
    root, drive = rng.integers(40, 48), rng.uniform(4, 12)
    roots = root + np.array([0, 5, 7, 3, 10])
    guitar = np.zeros(n)
    chord = roots[0]
    for k, pos in enumerate(_grid(n, beat / 2, rng)[0]):
        if k % 8 == 0:
            chord = rng.choice(roots)
        m = int(0.9 * beat / 2)
        chug = sum(_osc(_hz(chord + i), m, sr, "saw") for i in (0, 7, 12))
        _add(guitar, chug * np.exp(-_t(m, sr) / rng.uniform(0.1, 0.4)), pos)
        if k % 4 == 0:
            _add(out, kick, pos)
        if k % 4 == 2:
            _add(out, snare, pos)
        _add(out, 0.3 * hat, pos)
    guitar = _lowpass(np.tanh(drive * guitar), sr, rng.uniform(2500, 5000))
    return out + 0.5 * guitar


def _synth_swing(rng, n, sr):
    beat = 60 / rng.uniform(130, 200) * sr
    out = np.zeros(n)
    tr = _t(0.5 * sr, sr)
    ride = sum(
        _osc(rng.uniform(2500, 3500) * r, len(tr), sr) for r in (1, 1.47, 2.09, 2.56)
    ) * np.exp(-tr / 0.3)
    ride[: int(0.48 * sr)] += _hat(rng, sr, 0.08)[: int(0.48 * sr)]
    foot = _hat(rng, sr, 0.015)
    scale = rng.integers(33, 41) + np.array([0, 2, 4, 5, 7, 9, 10, 12])
    degree = 0
    m = int(beat)
    for k, pos in enumerate(_grid(n, beat, rng)[0]):
        _add(out, 0.15 * ride, pos)
        if k % 2:
            _add(out, 0.1 * ride, pos + 2 * beat / 3)
            _add(out, 0.3 * foot, pos)
        degree = int(np.clip(degree + rng.choice([-2, -1, 1, 2]), 0, len(scale) - 1))
        bass = _osc(_hz(scale[degree]), m, sr, "triangle") * np.exp(-_t(m, sr) / 0.25)
        _add(out, 0.8 * bass, pos)
        if rng.random() < 0.3:  # a comping chord on an off-beat
            chord = _hz(scale[degree] + 24 + np.array([0, 4, 7, 10]))
            stab = sum(_osc(f, m // 2, sr) for f in chord) * np.exp(
                -_t(m // 2, sr) / 0.08
            )
            _add(out, 0.15 * stab, pos + 2 * beat / 3)
    return out


def _synth_chiptune(rng, n, sr):
    six = 60 / rng.uniform(130, 170) * sr / 4  # sixteenths
    out = np.zeros(n)
    root = rng.integers(60, 68)
    triad = np.array([0, rng.choice([3, 4]), 7, 12])
    m = int(six)
    for k, pos in enumerate(_grid(n, six, rng)[0]):
        if k % 16 == 0:
            root = root + rng.choice([0, 5, -5, 7, -7])
            root = int(np.clip(root, 55, 72))
        _add(out, 0.3 * _osc(_hz(root + triad[k % 4]), m, sr, "square"), pos)
        if k % 2 == 0:
            _add(out, 0.3 * _osc(_hz(root - 24), 2 * m, sr, "square"), pos)
            burst = rng.uniform(-1, 1, m // 2) * np.exp(-_t(m // 2, sr) / 0.01)
            _add(out, 0.2 * np.round(burst * 4) / 4, pos)
    return np.round(out * 16) / 16


def _synth_noise(rng, n, sr):
    out = np.zeros(n)
    for _ in range(rng.integers(6, 16)):
        m = int(rng.uniform(0.1, 1.2) * sr)
        t = _t(m, sr)
        kind = rng.integers(4)
        if kind == 0:  # band of noise
            band = _lowpass(rng.standard_normal(m), sr, rng.uniform(300, 6000), 4)
            event = band * np.hanning(m)
        elif kind == 1:  # exponential chirp
            f0, f1 = rng.uniform(100, 4000, 2)
            event = _osc(f0 * (f1 / f0) ** (t / t[-1]), m, sr) * np.hanning(m)
        elif kind == 2:  # click train
            event = np.zeros(m)
            event[:: max(1, int(sr / rng.uniform(5, 60)))] = 1.0
        else:  # beating cluster
            f = rng.uniform(80, 800)
            event = sum(_osc(f * (1 + d), m, sr) for d in rng.uniform(0, 0.03, 4))
            event = 0.3 * event * np.hanning(m)
        _add(out, rng.uniform(0.2, 1.0) * event, rng.uniform(-m / 2, n))
    return out


SYNTHS = {
    "ambient": _synth_ambient,
    "chiptune": _synth_chiptune,
    "folk": _synth_folk,
    "hiphop": _synth_hiphop,
    "noise": _synth_noise,
    "rock": _synth_rock,
    "swing": _synth_swing,
    "techno": _synth_techno,
}


def synth_clip(genre, rng, n, sr):
    """One clip of ``genre``: the music, a random gain and tone, mixed noise."""
    x = SYNTHS[genre](rng, n, sr)
    x = _lowpass(x, sr, rng.uniform(2000, 9000), 1)  # random tone colour
    x = x / (np.max(np.abs(x)) + 1e-12)
    noise = rng.standard_normal(n)
    if rng.random() < 0.5:  # pink-ish
        noise = _lowpass(noise, sr, 500, 1)
    snr_db = rng.uniform(12, 35)
    noise *= np.sqrt(np.mean(x**2) / (np.mean(noise**2) + 1e-12)) * 10 ** (-snr_db / 20)
    x = x + noise
    return rng.uniform(0.25, 0.9) * x / (np.max(np.abs(x)) + 1e-12)


def write_audio(path, x, sr, fmt):
    """Write mono ``x`` to ``path`` atomically (:func:`genreclf._files.atomic_write`).

    ``fmt`` is a key of :data:`FORMATS`: 16-bit PCM wav through :mod:`wave`,
    the others through ``soundfile`` (told the format, since it writes to an
    open file whose temporary name has no extension).
    """
    with atomic_write(path) as f:
        if fmt == "wav":
            pcm = np.round(np.clip(x, -1, 1) * 32767).astype("<i2")
            with wave.open(f, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(sr)
                w.writeframes(pcm.tobytes())
        else:
            import soundfile

            soundfile.write(f, x.astype(np.float32), sr, format=FORMATS[fmt])
