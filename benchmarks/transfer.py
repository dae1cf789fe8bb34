"""Music genreclf was not trained on: transfer to other recordings, and robustness.

The accuracy benchmark that matters. Two parts, one run:

1. **Transfer.** The MFCC-statistics baseline (20 MFCCs, mean/std, logistic
   regression) and ``build_pipeline(random_state=0)`` are trained on all of
   ``gtzan-100`` and predict every other labelled recording at hand whose label
   names a GTZAN genre: ``styles-mp3/`` by style (bop, contemporary jazz, swing
   -> jazz; disco; dub -> reggae; heavy metal -> metal; indie rock, punk ->
   rock; europop -> pop) and ``fma/`` (Hip-Hop -> hiphop, Pop -> pop; Folk has
   no GTZAN genre and is left out). ``gtzan-full10`` holds the same recordings
   as ``gtzan-100`` and does not count. Each clip is predicted whole and as
   2 s and 3 s excerpts from its middle; every prediction is printed with the
   top three genres, so a reader sees which genres are confused.
2. **Robustness.** On ``--folds`` stratified cross-validation folds of
   ``gtzan-100`` (fixed seed), the same fitted models predict their test clips
   as they are and changed the way other productions differ: re-encoded as
   64 kb/s mp3, at -20 dB and +6 dB, with a tilt EQ of +6 and -6 dB/octave,
   with white noise at 20 dB SNR, and 6 % faster and slower. The table gives
   the accuracy of each and its change from the clean clips (paired: same
   clips, same models), and the accuracy on 3 s excerpts of the test clips;
   then, for each, the default's most frequent confusions (true -> called).
   The default model of each fold is one net (``--robust-members``, so that
   the run stays under 15 minutes on two cores); ``--robust-members 5``
   measures the shipped five-net ensemble, at about five times the cost.

The perturbed clips and excerpts are written once (float WAV, or mp3) under
``--cache`` and their MFCCs cached there, so a second run decodes nothing.

Usage::

    python benchmarks/transfer.py                     # ~8.4 min on two cores (empty cache)
    python benchmarks/transfer.py --folds 0           # transfer only
    python benchmarks/transfer.py --option n_mfcc=20  # a variant of the default
    python benchmarks/transfer.py --no-transfer       # robustness only
    python benchmarks/transfer.py --predict "one:predict_stretch=()"
        # also the same fitted default without its tempo views (no refit: paired)

The recordings folder is ``$GENRECLF_REAL_AUDIO``, else ``../shared/data``.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import accuracy  # noqa: E402  (benchmarks/accuracy.py: baseline, excerpts, options)

#: styles-mp3 clip -> the GTZAN genre it belongs to.
STYLE_TO_GENRE = {
    "bop": "jazz",
    "contemporary_jazz": "jazz",
    "swing": "jazz",
    "disco": "disco",
    "dub": "reggae",
    "heavy_metal": "metal",
    "indie_rock": "rock",
    "punk": "rock",
    "europop": "pop",
}
#: FMA genre_top -> GTZAN genre (Folk, Experimental... have none).
FMA_TO_GENRE = {"Hip-Hop": "hiphop", "Pop": "pop", "Rock": "rock"}
#: The changes of production of the robustness table (name -> (kind, value)).
PERTURBATIONS = {
    "mp3 64 kb/s": ("mp3", 64),
    "-20 dB": ("gain", -20.0),
    "+6 dB": ("gain", 6.0),
    "tilt +6 dB/oct": ("tilt", 6.0),
    "tilt -6 dB/oct": ("tilt", -6.0),
    "noise 20 dB SNR": ("noise", 20.0),
    "6% faster": ("tempo", 1.06),
    "6% slower": ("tempo", 0.94),
}
SEED = 0


def _log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data ---------------------------------------------------------------------------


def transfer_set(root):
    """Paths and GTZAN genres of the other recordings under ``root``."""
    import csv

    paths, genres = [], []
    for style, genre in STYLE_TO_GENRE.items():
        path = root / "styles-mp3" / f"{style}.mp3"
        if path.exists():
            paths.append(str(path))
            genres.append(genre)
    labels = root / "fma" / "labels.csv"
    if labels.exists():
        with open(labels, newline="") as f:
            for row in csv.DictReader(f):
                genre = FMA_TO_GENRE.get(row["genre_top"])
                tid = f"{int(row['track_id']):06d}"
                path = root / "fma" / "fma_small" / tid[:3] / f"{tid}.mp3"
                if genre and path.exists():
                    paths.append(str(path))
                    genres.append(genre)
    return np.array(paths, dtype=object), np.array(genres)


def _target(folder, path, tag, suffix=".wav"):
    st = os.stat(path)
    ident = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{tag}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return Path(folder) / f"{Path(path).stem}-{digest}{suffix}"


_MP3_LEVEL = {}


def _mp3_at(wave, sr, kbps, target):
    """Write ``wave`` as mp3 at about ``kbps`` (libsndfile's compression level).

    libsndfile maps compression level 0..1 to its highest..lowest bit rate; the
    level that gives ``kbps`` is searched on the first clip and kept.
    """
    import soundfile as sf

    def write(level):
        sf.write(
            target, wave, sr, format="MP3", bitrate_mode="CONSTANT",
            compression_level=level,
        )
        return os.path.getsize(target) * 8 / 1000 / (len(wave) / sr)

    if (sr, kbps) in _MP3_LEVEL:
        return write(_MP3_LEVEL[sr, kbps])
    lo, hi = 0.0, 1.0
    for _ in range(8):
        level = (lo + hi) / 2
        rate = write(level)
        if abs(rate - kbps) / kbps < 0.1:
            break
        lo, hi = (level, hi) if rate > kbps else (lo, level)
    _MP3_LEVEL[sr, kbps] = level
    _log(f"mp3: compression level {level:.3f} gives {rate:.0f} kb/s")
    return rate


def perturb(wave, sr, kind, value, rng):
    """The clip changed by one perturbation (not ``mp3``, written elsewhere)."""
    if kind == "gain":
        return wave * 10 ** (value / 20)
    if kind == "tilt":
        spec = np.fft.rfft(wave)
        freqs = np.fft.rfftfreq(len(wave), 1 / sr)
        octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
        out = np.fft.irfft(spec * 10 ** (value * octaves / 20), n=len(wave))
        return out * (np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean(out**2)) + 1e-12))
    if kind == "noise":
        noise = rng.standard_normal(len(wave))
        power = np.mean(wave**2) / 10 ** (value / 10)
        return wave + noise * np.sqrt(power)
    if kind == "tempo":
        import librosa

        return librosa.effects.time_stretch(wave, rate=value)
    raise ValueError(kind)


def make_perturbed(paths, folder, name):
    """Write every clip changed by perturbation ``name``; return the new paths."""
    import soundfile as sf

    from genreclf.audio import DEFAULT_SR, load_audio

    kind, value = PERTURBATIONS[name]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, path in enumerate(paths):
        suffix = ".mp3" if kind == "mp3" else ".wav"
        target = _target(folder, path, f"{kind}{value}", suffix)
        if not target.exists():
            wave = load_audio(path, sr=DEFAULT_SR)
            tmp = target.with_name(".tmp-" + target.name)
            if kind == "mp3":
                _mp3_at(wave, DEFAULT_SR, value, tmp)
            else:
                rng = np.random.default_rng([SEED, i])
                new = perturb(wave.astype(np.float64), DEFAULT_SR, kind, value, rng)
                sf.write(tmp, new.astype(np.float32), DEFAULT_SR, subtype="FLOAT")
            os.replace(tmp, target)
        out.append(str(target))
    return np.array(out, dtype=object)


# -- models -------------------------------------------------------------------------


def make_models(args, members=None):
    from genreclf.pipeline import build_pipeline

    models = {"baseline": lambda: accuracy.make_baseline(args.cache, 20)}
    n_members = members or args.members
    options = dict(args.extra_options)
    if n_members == 1:
        # a temperature never changes one net's argmax, and the default's
        # calibration net would double the fit: the accuracy is the same without
        options.setdefault("calibrate", False)
    if not args.baseline_only:
        models["default"] = lambda: build_pipeline(
            memory=args.cache, random_state=SEED, n_members=n_members, **options
        )
    return models


def _fit(model, paths, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(np.asarray(paths, dtype=object), np.asarray(y))
    return model


def _proba(model, paths):
    return model.predict_proba(np.asarray(paths, dtype=object))


def _scored_models(args, name, model):
    """``(name, options)`` of every prediction of ``model`` a table shows."""
    yield name, {}
    if name == "default":
        for label, options in args.predict:
            yield f"default {label}", options


# -- the two parts ------------------------------------------------------------------


def run_transfer(args, root, train_paths, train_y):
    paths, y = transfer_set(root)
    if not len(paths):
        _log("no transfer recordings found")
        return {}
    excerpts = {
        "whole": paths,
        "3 s": accuracy.make_excerpts(paths, Path(args.cache) / "transfer-3s", 3.0),
        "2 s": accuracy.make_excerpts(paths, Path(args.cache) / "transfer-2s", 2.0),
    }
    results = {}
    for name, make in make_models(args).items():
        start, cpu = time.perf_counter(), time.process_time()
        model = _fit(make(), train_paths, train_y)
        fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
        _log(f"{name}: fitted in {fit_s:.0f} s ({fit_cpu:.0f} CPU s)")
        for label, options in _scored_models(args, name, model):
            entry = {"fit_s": fit_s, "fit_cpu_s": fit_cpu, "by_length": {}}
            with accuracy.predicting_with(model, options):
                for length, clips in excerpts.items():
                    proba = _proba(model, clips)
                    top = np.argsort(-proba, axis=1)[:, :3]
                    pred = model.classes_[top[:, 0]]
                    hits = accuracy.member_hits(model, clips, y)  # (nets, clips)
                    entry["by_length"][length] = {
                        "accuracy": float(np.mean(pred == y)),
                        "members": [float(h.mean()) for h in hits],
                        # how many nets alone name each clip right
                        "members_right": hits.sum(axis=0).tolist() if len(hits) else [],
                        "top3": [
                            [(str(model.classes_[j]), float(p[j])) for j in t]
                            for t, p in zip(top, proba, strict=True)
                        ],
                    }
            results[label] = entry
    print(f"\nTransfer: trained on gtzan-100 ({len(train_y)} clips), "
          f"{len(y)} other recordings")
    lengths = list(excerpts)
    width = max(10, *(len(name) + 1 for name in results))
    print(f"{'model':<{width}}" + "".join(f"{k:>10}" for k in lengths)
          + "   nets alone: mean (min-max)")
    for name, entry in results.items():
        cells = "".join(f"{entry['by_length'][k]['accuracy']:>10.3f}" for k in lengths)
        nets = [a for k in lengths for a in entry["by_length"][k]["members"]]
        spread = (
            " ".join(
                f"{k}: {np.mean(entry['by_length'][k]['members']):.2f} "
                f"({min(entry['by_length'][k]['members']):.2f}-"
                f"{max(entry['by_length'][k]['members']):.2f})"
                for k in lengths
            )
            if nets
            else ""
        )
        print(f"{name:<{width}}{cells}   {spread}")
    print("\nPer clip (top three genres with probabilities; 'nets k/n': how many of the"
          " ensemble's n nets alone name it right):")
    for i, path in enumerate(paths):
        print(f"  {Path(path).name}  [{y[i]}]")
        for name, entry in results.items():
            for length in lengths:
                found = entry["by_length"][length]
                top = found["top3"][i]
                mark = "ok" if top[0][0] == y[i] else "--"
                cells = ", ".join(f"{g} {p:.2f}" for g, p in top)
                right = found["members_right"]
                nets = f"  nets {right[i]}/{len(found['members'])}" if right else ""
                print(f"    {mark} {name:<{width}}{length:<6} {cells}{nets}")
    return {"clips": [str(p) for p in paths], "genres": y.tolist(), "models": results}


def run_robustness(args, paths, y):
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=SEED)
    splits = list(cv.split(np.zeros(len(y)), y))
    if args.only_folds:
        splits = [splits[k - 1] for k in args.only_folds]
    cache = Path(args.cache)
    variants = {"clean": paths}
    variants["3 s excerpt"] = accuracy.make_excerpts(paths, cache / "gtzan-3s", 3.0)
    for name in args.changes or PERTURBATIONS:
        _log(f"writing clips: {name}")
        variants[name] = make_perturbed(paths, cache / "perturbed", name)
    models = make_models(args, args.robust_members)
    scored = [label for name in models for label, _ in _scored_models(args, name, None)]
    hits = {m: {v: np.zeros(len(y), bool) for v in variants} for m in scored}
    called = {v: np.empty(len(y), dtype=object) for v in variants}
    for k, (train, test) in enumerate(splits):
        for name, make in models.items():
            model = _fit(make(), paths[train], y[train])
            for label, options in _scored_models(args, name, model):
                with accuracy.predicting_with(model, options):
                    for variant, clips in variants.items():
                        pred = model.predict(clips[test])
                        hits[label][variant][test] = pred == y[test]
                        if label == "default":
                            called[variant][test] = pred
                clean = hits[label]["clean"][test].mean()
                _log(f"fold {k + 1}/{len(splits)} {label}: clean {clean:.2f}")
    folds = f" (folds {args.only_folds})" if args.only_folds else ""
    print(f"\nRobustness: {args.folds}-fold CV{folds} on gtzan-100 ({len(y)} clips), "
          f"{args.robust_members or args.members} net(s) per default model; accuracy "
          "and change from clean (same clips, same models)")
    header = f"{'variant':<18}" + "".join(f"{m:>{max(22, len(m) + 2)}}" for m in hits)
    print(header)
    table = {}
    for variant in variants:
        cells = ""
        for model in hits:
            fold_acc = [hits[model][variant][t].mean() for _, t in splits]
            acc = float(np.mean(fold_acc))
            delta = acc - float(np.mean([hits[model]["clean"][t].mean() for _, t in splits]))
            table.setdefault(model, {})[variant] = {
                "accuracy": acc,
                "std": float(np.std(fold_acc)),
                "change": delta,
            }
            cells += f"{acc:>{max(12, len(model) - 8)}.3f} ({delta:+.3f}) "
        print(f"{variant:<18}{cells}")
    print_confusions(y, called)
    return table


def print_confusions(y, called, top=4):
    """What the default called the clips it got wrong, per variant of them.

    A change of production that moves the music towards another genre's sound
    (a bass boost towards duller genres, a slower tempo towards slower ones)
    shows as one or two confusions taking most of the loss.
    """
    from collections import Counter

    print("\nMost frequent confusions of the default (true -> called: clips)")
    for variant, pred in called.items():
        wrong = Counter((t, p) for t, p in zip(y, pred, strict=True) if t != p)
        pairs = ", ".join(f"{t}->{p}: {n}" for (t, p), n in wrong.most_common(top))
        print(f"{variant:<18}{pairs or '-'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    accuracy.add_data_arguments(parser)
    parser.add_argument("--folds", type=int, default=5, help="0: transfer only")
    parser.add_argument("--members", type=int, default=5, help="nets per ensemble")
    parser.add_argument(
        "--robust-members", type=int, default=1,
        help="nets per default model in the robustness folds (default: 1, which "
        "keeps the whole run under 15 min on two cores; 5 is the shipped ensemble)",
    )
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE",
        help="a build_pipeline short option for the default (repeatable)",
    )
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument(
        "--no-transfer", action="store_true",
        help="the robustness table only (to compare variants of the default)",
    )
    parser.add_argument(
        "--predict", action="append", default=[], type=accuracy.parse_variant,
        metavar="NAME:option=value",
        help="also score the fitted default with these prediction-time options of "
        "its nets, e.g. 'views:predict_stretch=(0.97,1.03)' (repeatable; no refit, "
        "so the comparison is paired)",
    )
    parser.add_argument(
        "--only-folds", type=lambda t: [int(k) for k in t.split(",")], default=None,
        metavar="K,K", help="robustness on these folds only (1-based; a quicker look)",
    )
    parser.add_argument(
        "--changes", type=lambda t: t.split(","), default=None,
        metavar="NAME,NAME", help="robustness rows to run, of: "
        + ", ".join(PERTURBATIONS).replace("%", "%%"),
    )
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args(argv)
    args.extra_options = dict(accuracy._parse_option(o) for o in args.option)
    unknown = sorted(set(args.changes or ()) - set(PERTURBATIONS))
    if unknown:
        parser.error(f"--changes: unknown {unknown}; known: {list(PERTURBATIONS)}")
    if any(not 1 <= k <= args.folds for k in args.only_folds or ()):
        parser.error(f"--only-folds: folds are 1..{args.folds}, got {args.only_folds}")
    from genreclf.datasets import load_folder

    root = Path(args.root)
    if not (root / "gtzan-100").is_dir():
        sys.exit(f"{root / 'gtzan-100'} is absent")
    paths, y = load_folder(root / "gtzan-100")
    paths, y = np.asarray(paths, dtype=object), np.asarray(y)
    load = os.getloadavg()
    _log(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
         f"options {args.extra_options or 'preset default'}")
    start = time.perf_counter()
    report = {"options": {k: repr(v) for k, v in args.extra_options.items()}}
    if not args.no_transfer:
        report["transfer"] = run_transfer(args, root, paths, y)
    if args.folds:
        report["robustness"] = run_robustness(args, paths, y)
    report["wall_s"] = time.perf_counter() - start
    report["loadavg_end"] = os.getloadavg()
    print(f"\ntotal {report['wall_s'] / 60:.1f} min; load average at the end "
          f"{report['loadavg_end'][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
