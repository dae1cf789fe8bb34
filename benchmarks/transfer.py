"""Music from elsewhere: models trained on gtzan-100, tested on other recordings.

Cross-validation on gtzan-100 (``benchmarks/accuracy.py``) tests on clips from the
same GTZAN collection, often by the same artists and with the same production. This
script asks the harder question on the few other labelled recordings at hand: it
trains the MFCC-statistics baseline and ``build_pipeline()`` (seed 0) on all of
gtzan-100 and predicts the clips of ``styles-mp3/`` whose style names a GTZAN genre
(bop, contemporary jazz, swing -> jazz; disco; dub -> reggae; heavy metal -> metal;
indie rock, punk -> rock; europop -> pop), whole and as 2 s excerpts from their
middle. Nine clips: a sanity check of transfer, not an accuracy estimate.

Usage::

    python benchmarks/transfer.py            # about 4 min on two cores

The recordings folder is ``$GENRECLF_REAL_AUDIO``, else ``../shared/data``.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import accuracy  # noqa: E402  (benchmarks/accuracy.py: baseline and excerpts)

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_root = os.environ.get("GENRECLF_REAL_AUDIO") or str(
        Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    parser.add_argument("--root", default=default_root, help="real recordings folder")
    parser.add_argument(
        "--cache", default=str(Path(__file__).parent / "results" / "mfcc-cache")
    )
    args = parser.parse_args(argv)
    from genreclf.datasets import load_folder
    from genreclf.pipeline import build_pipeline

    root = Path(args.root)
    train_paths, train_y = load_folder(root / "gtzan-100")
    test_paths = np.array(
        [str(root / "styles-mp3" / f"{style}.mp3") for style in STYLE_TO_GENRE],
        dtype=object,
    )
    test_y = np.array(list(STYLE_TO_GENRE.values()))
    excerpts = accuracy.make_excerpts(test_paths, Path(args.cache) / "transfer-2s")
    models = {
        "baseline (MFCC mean/std + LR)": accuracy.make_baseline(args.cache, 20),
        "default ensemble": build_pipeline(memory=args.cache, random_state=0),
    }
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.fit(np.asarray(train_paths, dtype=object), np.asarray(train_y))
        whole, short = model.predict(test_paths), model.predict(excerpts)
        seconds = time.perf_counter() - start
        rows.append((name, whole, short, seconds))
        print(
            f"{name}: {np.sum(whole == test_y)}/{len(test_y)} whole, "
            f"{np.sum(short == test_y)}/{len(test_y)} on 2 s ({seconds:.0f} s)",
            flush=True,
        )
    print(f"\n{'clip':<20}{'genre':<8}" + "".join(f"{r[0][:22]:<24}" for r in rows))
    for i, style in enumerate(STYLE_TO_GENRE):
        cells = "".join(f"{r[1][i] + ' / ' + r[2][i]:<24}" for r in rows)
        print(f"{style:<20}{test_y[i]:<8}{cells}")
    print("(each cell: prediction for the whole clip / for its 2 s excerpt)")


if __name__ == "__main__":
    main()
