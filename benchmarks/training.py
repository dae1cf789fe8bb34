"""Training and inference speed of the default net: skorch GenreNet vs plain PyTorch.

Measures, in one run and on the same data, the net of ``build_pipeline(preset)``
(``GenreNet`` with ``GenreCNN``: filters 64/160/128, dense 64, RMSprop with
weight decay on block 2, whole 20 x 1230 MFCC clips) two ways:

- **skorch**: ``GenreNet.fit`` and ``GenreNet.predict_proba``, as genreclf runs
  them, with ``valid_size=None`` (no held-out part, so no validation pass);
- **plain**: the loop a PyTorch user writes: the same ``GenreCNN``, the same
  RMSprop and parameter groups, the same number of shuffled mini-batches
  taken from ``torch.from_numpy(X)`` (no per-item conversion), ``zero_grad``,
  forward, cross-entropy, backward, ``step``; inference in
  ``torch.inference_mode``.

Both clocks cover what a user waits for: building the module and the
optimizer, the epochs, the prediction. An untimed warm-up runs both first.

Fairness on a shared, noisy machine (``--interleave``):

- ``batch`` (default on the CPU): the two paths run *interleaved batch by
  batch* in one process: a callback of the skorch net runs one step of the
  plain loop at each skorch batch (after it on even repeats, before it on odd
  ones) and times it; skorch's time is its wall time minus those steps. A
  change of load therefore hits both paths alike.
- ``run`` (default on CUDA, where timing a step needs a synchronisation):
  whole fits alternate, skorch first on even repeats, plain first on odd ones.

Rates are medians over ``--repeats``; the ratio skorch/plain is the median of
the per-repeat ratios, with the best-of ratio (min plain time / min skorch
time) and the ratio of process CPU seconds (``CPU s``, the steadier figure on
a busy machine) beside it.

It runs on the CPU always (``--threads`` adds rows with other torch thread
counts), and on CUDA when ``torch.cuda.is_available()``, there in fp32 and
with automatic mixed precision (``torch.autocast``: bfloat16 where the GPU
supports it, else float16 with a ``GradScaler``) in both paths.

``--cpu-options`` measures, instead of the table, options of the CPU on the
plain loop, each against the default (interleaved batch by batch): one torch
thread, channels-last memory format, bfloat16 autocast (with and without
channels-last); then the data loading alone (skorch's DataLoader over
``GenreNet``'s dataset vs indexing ``torch.from_numpy(X)``) and skorch's own
cost (a one-filter net, one thread, CPU time: per fit and per batch).
``--malloc-compare`` re-runs this script in child processes, alternately
without and with the glibc malloc settings of ``MALLOC_ENV`` (they must be set
before a process starts), and compares rates, page faults and peak memory.

Usage::

    python benchmarks/training.py                        # default net, CPU (+CUDA)
    python benchmarks/training.py --threads 0,1          # torch's threads, and 1
    python benchmarks/training.py --n-samples 64 --repeats 5
    python benchmarks/training.py --frames 129           # 3 s inputs, faster
    python benchmarks/training.py --cpu-options --repeats 2
    python benchmarks/training.py --malloc-compare --repeats 1
    python benchmarks/training.py --json figures.json

The data are random standardized "MFCCs" (speed does not depend on values).
"""

import argparse
import contextlib
import fnmatch
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from sklearn.base import clone
from skorch.callbacks import Callback
from torch.nn import functional as F

from genreclf._malloc import MALLOC_ENV



# -- configuration --------------------------------------------------------------------


def _autocast(device, precision):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _make_scaler(device, precision):
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(torch.device(device).type)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class _Setup:
    """Device, precision, memory format and threads, shared by both paths."""

    def __init__(self, device="cpu", precision="fp32", channels_last=False, threads=0):
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.threads = threads  # 0: leave torch's setting

    def label(self):
        parts = [self.precision]
        if self.channels_last:
            parts.append("channels-last")
        if self.threads:
            parts.append(f"{self.threads} thread(s)")
        return " ".join(parts)

    @contextlib.contextmanager
    def active(self):
        before = torch.get_num_threads()
        if self.threads and self.threads != before:
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != before:
                torch.set_num_threads(before)

    def prepare(self, x):
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


# -- the skorch path ------------------------------------------------------------------


def skorch_net(template, setup, batch_size, epochs, seed, callbacks=None):
    """A GenreNet with the template's parameters and no validation split."""
    params = {
        "valid_size": None,
        "max_epochs": epochs,
        "batch_size": batch_size,
        "iterator_valid__batch_size": batch_size,
        "random_state": seed,
        "device": setup.device,
        "verbose": 0,
    }
    if callbacks:
        params["callbacks"] = list(template.callbacks or []) + callbacks
    # GenreNet's own options: autocast (with a GradScaler for fp16) and layout.
    params["precision"] = setup.precision
    params["channels_last"] = setup.channels_last
    return clone(template).set_params(**params)


class _Partner(Callback):
    """Run one step of another path at each training batch of the net; time it."""

    def __init__(self, steps, before):
        self.steps = steps
        self.before = before
        self.seconds = np.zeros(2)  # wall, CPU

    def advance(self):
        start = _now()
        next(self.steps, None)
        self.seconds += _now() - start

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and self.before:
            self.advance()

    def on_batch_end(self, net, training=False, **kwargs):
        if training and not self.before:
            self.advance()


# -- the plain path -------------------------------------------------------------------


def _param_groups(module, patterns):
    """skorch's ``optimizer__param_groups`` (fnmatch patterns), by hand."""
    named = list(module.named_parameters())
    taken, groups = set(), []
    for pattern, options in patterns:
        names = [n for n, _ in named if fnmatch.fnmatch(n, pattern) and n not in taken]
        taken.update(names)
        groups.append({"params": [p for n, p in named if n in names], **options})
    return [{"params": [p for n, p in named if n not in taken]}] + groups


def _geometry(template, n_frames):
    window = min(template.window or n_frames, n_frames)
    hop = template.window_hop or max(1, window // 2)
    return window, hop, np.arange(0, n_frames - window + 1, hop)


def train_items(template, X):
    """Training samples the net sees per epoch (clips, or windows)."""
    window, _, starts = _geometry(template, X.shape[-1])
    if window == X.shape[-1] or template.train_windows == "random":
        return len(X)
    return len(X) * len(starts)


class PlainTrainer:
    """The plain PyTorch loop; ``steps()`` yields after every mini-batch."""

    def __init__(self, template, setup, X, y, batch_size, epochs, seed):
        self.template, self.setup = template, setup
        self.X, self.y = X, y
        self.batch_size, self.epochs, self.seed = batch_size, epochs, seed
        self.module = None

    def _build(self):
        t, setup = self.template, self.setup
        n_clips, n_channels, n_mfcc, n_frames = self.X.shape
        torch.manual_seed(self.seed)
        kwargs = {
            "n_classes": int(self.y.max()) + 1,
            "n_mfcc": n_mfcc,
            "n_frames": self.window,
            "in_channels": n_channels,
            **t.get_params_for("module"),
        }
        module = t.module(**kwargs).to(setup.device)
        if setup.channels_last:
            module = module.to(memory_format=torch.channels_last)
        opt_params = t.get_params_for("optimizer")
        groups = _param_groups(module, opt_params.pop("param_groups", ()))
        optimizer = t.optimizer(groups, lr=t.lr, **opt_params)
        return module, optimizer, _make_scaler(setup.device, setup.precision)

    def steps(self):
        setup, bs = self.setup, self.batch_size
        n_frames = self.X.shape[-1]
        self.window, self.hop, starts = _geometry(self.template, n_frames)
        starts = torch.from_numpy(starts)
        module, optimizer, scaler = self._build()
        self.module = module
        X_t, y_t = torch.from_numpy(self.X), torch.from_numpy(self.y)  # no copy
        whole = self.window == n_frames
        views = None if whole else X_t.unfold(-1, self.window, 1)
        n_items = train_items(self.template, self.X)
        module.train()
        running = torch.zeros((), device=setup.device)
        for _ in range(self.epochs):
            order = torch.randperm(n_items)
            for first in range(0, n_items, bs):
                k = order[first : first + bs]
                if whole:
                    xb, yb = X_t[k], y_t[k]
                elif self.template.train_windows == "random":
                    pos = torch.randint(n_frames - self.window + 1, (len(k),))
                    xb, yb = views[k, :, :, pos], y_t[k]
                else:
                    clip = k // len(starts)
                    xb, yb = views[clip, :, :, starts[k % len(starts)]], y_t[clip]
                xb, yb = setup.prepare(xb), yb.to(setup.device)
                optimizer.zero_grad()
                with _autocast(setup.device, setup.precision):
                    loss = F.cross_entropy(module(xb).float(), yb)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                running += loss.detach()
                yield
        _sync(setup.device)


def plain_infer_steps(trainer, X, batch_size, out):
    """Mean probability over each clip's windows; yields after every batch."""
    module, window, setup = trainer.module, trainer.window, trainer.setup
    module.eval()
    X_t = torch.from_numpy(X)
    n_clips, n_frames = X.shape[0], X.shape[-1]
    probas = []
    if window == n_frames:
        batches = (X_t[i : i + batch_size] for i in range(0, n_clips, batch_size))
        n_win = 1
    else:
        starts = torch.arange(0, n_frames - window + 1, trainer.hop)
        views, n_win = X_t.unfold(-1, window, 1), len(starts)
        total = n_clips * n_win
        batches = (
            views[k // n_win, :, :, starts[k % n_win]]
            for k in (
                torch.arange(i, min(i + batch_size, total))
                for i in range(0, total, batch_size)
            )
        )
    for xb in batches:
        # Contexts must not span a yield: the caller runs other code meanwhile.
        with torch.inference_mode(), _autocast(setup.device, setup.precision):
            logits = module(setup.prepare(xb))
            probas.append(torch.softmax(logits.float(), dim=1).cpu())
        yield
    out.append(torch.cat(probas).reshape(n_clips, n_win, -1).mean(dim=1).numpy())


# -- measuring ------------------------------------------------------------------------


def _now():
    """Wall-clock and CPU (this process, all threads) seconds."""
    return np.array([time.perf_counter(), time.process_time()])


def _exhaust(steps):
    start = _now()
    for _ in steps:
        pass
    return _now() - start


def _timed(fn):
    start = _now()
    result = fn()
    return _now() - start, result


def skorch_vs_plain(template, setup, X, y, bs, epochs, seed, interleave, plain_first):
    """One repeat: (skorch fit, plain fit, skorch predict, plain predict), each
    an array (wall seconds, CPU seconds)."""
    trainer = PlainTrainer(template, setup, X, y, bs, epochs, seed)
    out = []
    with setup.active():
        if interleave == "run":
            t_plain_fit = t_plain_inf = None
            if plain_first:
                t_plain_fit = _exhaust(trainer.steps())
                t_plain_inf = _exhaust(plain_infer_steps(trainer, X, bs, out))
            net = skorch_net(template, setup, bs, epochs, seed)
            t_fit, _ = _timed(lambda: net.fit(X, y))
            t_inf, _ = _timed(lambda: net.predict_proba(X))
            if not plain_first:
                t_plain_fit = _exhaust(trainer.steps())
                t_plain_inf = _exhaust(plain_infer_steps(trainer, X, bs, out))
            return t_fit, t_plain_fit, t_inf, t_plain_inf
        # batch by batch: the plain loop steps inside the skorch net's callbacks
        partner = _Partner(trainer.steps(), before=plain_first)
        net = skorch_net(template, setup, bs, epochs, seed, [("partner", partner)])
        t_fit, _ = _timed(lambda: net.fit(X, y))
        t_plain_fit = partner.seconds + _exhaust(partner.steps)  # rest, if any
        t_fit -= partner.seconds
        # prediction: one plain batch per skorch evaluation step
        infer = _Partner(plain_infer_steps(trainer, X, bs, out), before=plain_first)
        evaluation_step = net.evaluation_step

        def paired_step(batch, training=False):
            if infer.before:
                infer.advance()
            result = evaluation_step(batch, training=training)
            if not infer.before:
                infer.advance()
            return result

        net.evaluation_step = paired_step
        t_inf, _ = _timed(lambda: net.predict_proba(X))
        t_plain_inf = infer.seconds + _exhaust(infer.steps)
        t_inf -= infer.seconds
        del net.evaluation_step
    return t_fit, t_plain_fit, t_inf, t_plain_inf


def plain_vs_plain(template, setup_a, setup_b, X, y, bs, epochs, seed, b_first):
    """One repeat of two plain loops interleaved batch by batch: (a fit, b fit,
    a predict, b predict) in seconds."""
    ta = PlainTrainer(template, setup_a, X, y, bs, epochs, seed)
    tb = PlainTrainer(template, setup_b, X, y, bs, epochs, seed)
    figures = []
    for make in (
        lambda t: t.steps(),
        lambda t: plain_infer_steps(t, X, bs, []),
    ):
        pairs = [(setup_a, make(ta), [np.zeros(2)]), (setup_b, make(tb), [np.zeros(2)])]
        if b_first:
            pairs.reverse()
        active = list(pairs)
        while active:
            for item in list(active):
                setup, steps, total = item
                start = _now()
                with setup.active():
                    done = next(steps, StopIteration) is StopIteration
                total[0] += _now() - start
                if done:
                    active.remove(item)
        if b_first:
            pairs.reverse()
        figures += [pairs[0][2][0], pairs[1][2][0]]
    return figures[0], figures[1], figures[2], figures[3]


def summarize(times, n_train, n_clips):
    """Median rates and ratios a/b from repeats of (a fit, b fit, a inf, b inf).

    ``ratio`` is the median over repeats of b's time / a's time (a's speed
    relative to b's), ``ratio_best`` the best-of ratio, ``ratio_cpu`` the
    median ratio of CPU seconds.
    """
    out = {}
    for kind, n, ia, ib in (("train", n_train, 0, 1), ("infer", n_clips, 2, 3)):
        a = np.array([t[ia] for t in times])  # (repeats, [wall, cpu])
        b = np.array([t[ib] for t in times])
        out[kind] = {
            "a_rate": n / float(np.median(a[:, 0])),
            "b_rate": n / float(np.median(b[:, 0])),
            "a_seconds": a[:, 0].tolist(),
            "b_seconds": b[:, 0].tolist(),
            "a_cpu_seconds": a[:, 1].tolist(),
            "b_cpu_seconds": b[:, 1].tolist(),
            "ratio": float(np.median(b[:, 0] / a[:, 0])),
            "ratio_best": float(b[:, 0].min() / a[:, 0].min()),
            "ratio_cpu": float(np.median(b[:, 1] / a[:, 1])),
        }
    return out


def make_data(n_samples, n_mfcc, n_frames, n_classes, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, 1, n_mfcc, n_frames), dtype=np.float32)
    y = np.arange(n_samples, dtype=np.int64) % n_classes
    return X, y


def _warm_slice(X, y, batch_size):
    """Enough samples for a full batch and the last, partial one."""
    n = min(len(X), batch_size + len(X) % batch_size)
    return X[:n], y[:n]


def _setups(args):
    setups = [_Setup("cpu", "fp32", threads=n) for n in args.threads]
    if torch.cuda.is_available() and not args.cpu_only:
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        setups += [
            _Setup("cuda", "fp32"),
            _Setup("cuda", amp),
            _Setup("cuda", amp, channels_last=True),
        ]
        if amp == "bf16":
            setups.append(_Setup("cuda", "fp16"))
    return setups


def compare_paths(args, template, X, y):
    rows = []
    n_train = train_items(template, X) * args.epochs
    for setup in _setups(args):
        interleave = args.interleave
        if interleave == "auto":
            interleave = "batch" if setup.device == "cpu" else "run"
        for bs in args.batch_sizes:
            common = (template, setup)
            skorch_vs_plain(
                *common, *_warm_slice(X, y, bs), bs, 1, args.seed, interleave, False
            )
            times = [
                skorch_vs_plain(
                    *common, X, y, bs, args.epochs, args.seed, interleave, bool(r % 2)
                )
                for r in range(args.repeats)
            ]
            row = {
                "device": setup.device,
                "threads": setup.threads or torch.get_num_threads(),
                "precision": setup.precision + ("+cl" if setup.channels_last else ""),
                "batch_size": bs,
                "interleave": interleave,
                **summarize(times, n_train, len(X)),
            }
            rows.append(row)
            _print_row(row)
    return rows


def compare_options(args, template, X, y):
    """Each CPU option against the default, plain loop, interleaved by batch."""
    threads = torch.get_num_threads()
    variants = [
        _Setup("cpu", "fp32", threads=1),
        _Setup("cpu", "fp32", channels_last=True),
        _Setup("cpu", "bf16"),
        _Setup("cpu", "bf16", channels_last=True),
    ]
    if threads == 1:
        variants = variants[1:]
    n_train = train_items(template, X) * args.epochs
    base = _Setup("cpu", "fp32")
    rows = []
    for bs in args.batch_sizes:
        for variant in variants:
            plain_vs_plain(
                template, variant, base, *_warm_slice(X, y, bs), bs, 1, args.seed, False
            )
            times = [
                plain_vs_plain(
                    template,
                    variant,
                    base,
                    X,
                    y,
                    bs,
                    args.epochs,
                    args.seed,
                    bool(r % 2),
                )
                for r in range(args.repeats)
            ]
            row = {"option": variant.label(), "batch_size": bs}
            row.update(summarize(times, n_train, len(X)))
            rows.append(row)
            t, i = row["train"], row["infer"]
            print(
                f"  {row['option']:<24} batch {bs:>3}: train {t['a_rate']:7.2f} vs "
                f"{t['b_rate']:7.2f} samples/s (x{t['ratio']:.2f}), inference "
                f"{i['a_rate']:7.2f} vs {i['b_rate']:7.2f} clips/s "
                f"(x{i['ratio']:.2f})",
                flush=True,
            )
    return rows


def compare_loading(template, X, y, batch_sizes, repeats):
    """Data loading alone per sample: skorch's iterator vs indexing from_numpy."""
    rows = []
    for bs in batch_sizes:
        net = skorch_net(template, _Setup(), bs, 1, 0)
        Xr, y_enc = net._prepare_fit(X, y, reset=True)
        net.initialize()
        dataset, _ = net.get_split_datasets(Xr, y_enc)

        def skorch_epoch(net=net, dataset=dataset):
            for batch in net.get_iterator(dataset, training=True):
                batch[0].to("cpu"), batch[1].to("cpu")

        def plain_epoch(bs=bs):
            X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
            order = torch.randperm(len(X_t))
            for first in range(0, len(X_t), bs):
                k = order[first : first + bs]
                X_t[k], y_t[k]

        skorch_epoch(), plain_epoch()
        s, p = [], []
        for _ in range(repeats):
            s.append(_timed(skorch_epoch)[0][0])
            p.append(_timed(plain_epoch)[0][0])
        row = {
            "batch_size": bs,
            "skorch_us": min(s) / len(X) * 1e6,
            "plain_us": min(p) / len(X) * 1e6,
        }
        rows.append(row)
        print(
            f"  data loading alone, batch {bs:>3}: skorch DataLoader "
            f"{row['skorch_us']:6.1f} us/sample, indexing torch.from_numpy(X) "
            f"{row['plain_us']:6.1f} us/sample (best of {repeats})",
            flush=True,
        )
    return rows


def measure_overhead(args, template, X, y, rows):
    """skorch's own cost beside the plain loop's, with a net that costs ~nothing.

    A one-filter net on the same inputs, one thread, CPU seconds (steady on a
    busy machine), fits alternating; the extra CPU time of the skorch path at
    ``n`` and ``4 n`` samples separates a cost per fit from a cost per batch.
    """
    tiny = clone(template).set_params(module__filters=(1,), module__dense=None)
    setup = _Setup("cpu", "fp32", threads=1)
    out = []
    for bs in args.batch_sizes:
        extra = {}
        for reps in (1, 4):
            Xn, yn = np.concatenate([X] * reps), np.concatenate([y] * reps)
            common = (tiny, setup, Xn, yn, bs, 1, args.seed, "run")
            skorch_vs_plain(*common, False)
            times = [skorch_vs_plain(*common, bool(r % 2)) for r in range(7)]
            n_batches = -(-train_items(tiny, Xn) // bs)  # windows, not clips
            fit = statistics.median(t[0][1] - t[1][1] for t in times)
            inf = statistics.median(t[2][1] - t[3][1] for t in times)
            extra[reps] = (n_batches, fit, inf)
        (b1, f1, i1), (b4, f4, i4) = extra[1], extra[4]
        per_batch, per_batch_inf = (f4 - f1) / (b4 - b1), (i4 - i1) / (b4 - b1)
        row = {
            "batch_size": bs,
            "train_per_fit_ms": (f1 - per_batch * b1) * 1e3,
            "train_per_batch_ms": per_batch * 1e3,
            "infer_per_call_ms": (i1 - per_batch_inf * b1) * 1e3,
            "infer_per_batch_ms": per_batch_inf * 1e3,
        }
        base = [r["train"]["b_rate"] for r in rows if r["batch_size"] == bs]
        text = ""
        if base:  # the default setup's plain loop on the real net
            batch_s = bs / statistics.median(base)
            row["train_share"] = per_batch / batch_s
            text = (
                f" = {100 * per_batch / batch_s:.3f}% of a training batch of this net"
            )
        out.append(row)
        print(
            f"  skorch's own cost, batch {bs:>3}: training "
            f"{row['train_per_fit_ms']:+.1f} ms per fit, "
            f"{row['train_per_batch_ms']:+.2f} ms per batch{text}; prediction "
            f"{row['infer_per_call_ms']:+.1f} ms per call, "
            f"{row['infer_per_batch_ms']:+.2f} ms per batch (CPU time, 1 thread)",
            flush=True,
        )
    return out


# -- reporting ------------------------------------------------------------------------


def _load():
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine():
    import skorch

    text = (
        f"{_cpu_name()}, {os.cpu_count()} CPU(s), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), skorch {skorch.__version__}, "
        f"Python {platform.python_version()}"
    )
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


HEADER = (
    f"{'device':<6} {'threads':>7} {'precision':<9} {'batch':>5} | "
    f"{'train samples/s':^15} {'skorch/plain':^20} | "
    f"{'inference clips/s':^15} {'skorch/plain':^20}\n"
    f"{'':<6} {'':>7} {'':<9} {'':>5} | {'skorch':>7} {'plain':>7} "
    f"{'median':>6} {'best':>6} {'CPU s':>6} | {'skorch':>7} {'plain':>7} "
    f"{'median':>6} {'best':>6} {'CPU s':>6}"
)


def _print_row(row):
    t, i = row["train"], row["infer"]
    print(
        f"{row['device']:<6} {row['threads']:>7} {row['precision']:<9} "
        f"{row['batch_size']:>5} | "
        f"{t['a_rate']:7.2f} {t['b_rate']:7.2f} {t['ratio']:6.3f} "
        f"{t['ratio_best']:6.3f} {t['ratio_cpu']:6.3f} | {i['a_rate']:7.2f} "
        f"{i['b_rate']:7.2f} {i['ratio']:6.3f} {i['ratio_best']:6.3f} "
        f"{i['ratio_cpu']:6.3f}",
        flush=True,
    )


def malloc_compare(args):
    """Re-run this script (CPU table only) without and with MALLOC_ENV."""
    child = [a for a in sys.argv[1:] if a not in ("--malloc-compare", "--cpu-options")]
    results, faults = {"off": [], "on": []}, {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.malloc_rounds):
            for setting in ("off", "on") if r % 2 == 0 else ("on", "off"):
                env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
                if setting == "on":
                    env.update(MALLOC_ENV)
                out = os.path.join(tmp, f"{setting}{r}.json")
                cmd = [
                    sys.executable,
                    os.path.abspath(__file__),
                    *child,
                    "--cpu-only",
                    "--quiet",
                    "--json",
                    out,
                ]
                print(f"round {r + 1}, malloc settings {setting}:", flush=True)
                subprocess.run(cmd, env=env, check=True)
                with open(out) as f:
                    child_figures = json.load(f)
                results[setting].append(child_figures["paths"])
                faults[setting].append(
                    (child_figures["minor_page_faults"], child_figures["max_rss_mb"])
                )
    print(f"\nmedian of {args.malloc_rounds} runs each:")
    print(f"{'batch':>5} {'figure':<25} {'without':>9} {'with':>9} {'ratio':>13}")
    summary = []
    for k, row in enumerate(results["off"][0]):
        for kind, side, what in (
            ("train", "a_rate", "skorch train samples/s"),
            ("train", "b_rate", "plain train samples/s"),
            ("infer", "a_rate", "skorch inference clips/s"),
            ("infer", "b_rate", "plain inference clips/s"),
        ):
            off = statistics.median(res[k][kind][side] for res in results["off"])
            on = statistics.median(res[k][kind][side] for res in results["on"])
            summary.append(
                {
                    "batch_size": row["batch_size"],
                    "figure": what,
                    "without": off,
                    "with": on,
                }
            )
            print(
                f"{row['batch_size']:>5} {what:<25} {off:9.2f} {on:9.2f} "
                f"{on / off:13.3f}"
            )
    for i, what in enumerate(("minor page faults", "peak RSS MB")):
        off = statistics.median(f[i] for f in faults["off"])
        on = statistics.median(f[i] for f in faults["on"])
        print(f"{'':>5} {what:<25} {off:9.4g} {on:9.4g} {on / off:13.3f}")
        summary.append({"figure": what, "without": off, "with": on})
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="default", choices=("default", "reference"))
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="input width in frames (default: the preset's clip, 1230 for 28.56 s)",
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=32,
        help="training clips, also the clips predicted (default 32)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[5, 32],
        help="comma-separated (default 5,32)",
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--interleave",
        default="auto",
        choices=("auto", "batch", "run"),
        help="auto: batch on the CPU, run on CUDA",
    )
    parser.add_argument(
        "--threads",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[0],
        help="torch threads of the CPU rows, "
        "comma-separated (default: torch's, one per core)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA")
    parser.add_argument(
        "--cpu-options",
        action="store_true",
        help="instead, measure threads, channels-last, bf16, "
        "data loading and skorch's own cost on the CPU",
    )
    parser.add_argument(
        "--malloc-compare",
        action="store_true",
        help="compare child runs without/with the malloc settings",
    )
    parser.add_argument("--malloc-rounds", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from genreclf.pipeline import build_pipeline

    pipe = build_pipeline(args.preset, n_members=1)
    mfcc, template = pipe.named_steps["mfcc"], pipe.named_steps["ensemble"].net
    n_frames = args.frames or mfcc.n_frames()
    X, y = make_data(args.n_samples, mfcc.n_mfcc, n_frames, 8, args.seed)
    malloc = {k: os.environ[k] for k in MALLOC_ENV if k in os.environ}
    figures = {
        "machine": _machine(),
        "load_start": _load(),
        "args": vars(args),
        "malloc_env": malloc,
    }
    if not args.quiet:
        print(f"machine: {figures['machine']}")
        print(f"load average at start (1, 5, 15 min): {figures['load_start']}")
    filters = template.get_params_for("module").get("filters")
    print(
        f"preset={args.preset}: input 1 x {mfcc.n_mfcc} x {n_frames}, filters "
        f"{filters}, {args.n_samples} samples, {args.epochs} epoch(s), "
        f"{args.repeats} repeats" + (f"; malloc env {malloc}" if malloc else ""),
        flush=True,
    )
    if args.malloc_compare:
        figures["malloc"] = malloc_compare(args)
    elif args.cpu_options:
        print(
            "CPU options (plain loop, interleaved by batch) vs the default "
            f"({torch.get_num_threads()} threads, fp32, contiguous):",
            flush=True,
        )
        figures["options"] = compare_options(args, template, X, y)
        figures["loading"] = compare_loading(
            template, X, y, args.batch_sizes, max(args.repeats, 3)
        )
        figures["overhead"] = measure_overhead(args, template, X, y, figures["options"])
    else:
        print(HEADER, flush=True)
        figures["paths"] = compare_paths(args, template, X, y)
        cpu = [r["train"]["ratio"] for r in figures["paths"] if r["device"] == "cpu"]
        verdict = "meets" if min(cpu) >= 0.95 else "MISSES"
        print(
            f"skorch/plain training on the CPU: {min(cpu):.3f} at worst "
            f"({verdict} the goal >= 0.95)",
            flush=True,
        )
    figures["load_end"] = _load()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["minor_page_faults"] = usage.ru_minflt
    figures["max_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    if not args.quiet:
        print(f"load average at end (1, 5, 15 min): {figures['load_end']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
