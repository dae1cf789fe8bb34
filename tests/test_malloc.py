"""genreclf._malloc: glibc's malloc settings, applied only when asked and not set."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from genreclf import _malloc
from genreclf._malloc import MALLOC_ENV, MALLOPT_PARAMS, apply_malloc_settings

INT_MAX = 2**31 - 1
EXPECTED = {
    "MALLOC_MMAP_THRESHOLD_": INT_MAX,  # 4 GiB does not fit mallopt's int
    "MALLOC_TRIM_THRESHOLD_": INT_MAX,  # 8 GiB neither
    "MALLOC_TOP_PAD_": 1073741824,
}

needs_glibc = pytest.mark.skipif(
    _malloc._glibc() is None, reason="needs Linux with glibc"
)


class FakeLibc:
    """Records mallopt calls; accepts every parameter but those in ``refuse``."""

    def __init__(self, refuse=()):
        self.calls = []
        self.refuse = set(refuse)

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 0 if param in self.refuse else 1


@pytest.fixture
def fake_libc(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(_malloc, "_glibc", lambda: libc)
    for name in MALLOC_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    return libc


def test_settings_match_the_training_module():
    from genreclf._training import MALLOC_ENV as training_env

    assert training_env == MALLOC_ENV


def test_mallopt_parameter_numbers_are_glibcs():
    # <malloc.h>: M_TRIM_THRESHOLD -1, M_TOP_PAD -2, M_MMAP_THRESHOLD -3
    assert MALLOPT_PARAMS == {
        "MALLOC_TRIM_THRESHOLD_": -1,
        "MALLOC_TOP_PAD_": -2,
        "MALLOC_MMAP_THRESHOLD_": -3,
    }
    assert set(MALLOPT_PARAMS) == set(MALLOC_ENV)


def test_applies_and_returns_every_value(fake_libc):
    applied = apply_malloc_settings()
    assert applied == EXPECTED
    assert sorted(fake_libc.calls) == sorted(
        (MALLOPT_PARAMS[name], value) for name, value in EXPECTED.items()
    )


def test_nothing_applied_when_the_user_set_the_variables(fake_libc, monkeypatch):
    for name in MALLOC_ENV:
        monkeypatch.setenv(name, "65536")
    assert apply_malloc_settings() == {}
    assert fake_libc.calls == []


def test_only_the_variables_the_user_left_unset(fake_libc, monkeypatch):
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    applied = apply_malloc_settings()
    assert set(applied) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    assert (MALLOPT_PARAMS["MALLOC_TOP_PAD_"], 1073741824) not in fake_libc.calls


def test_a_glibc_tunable_counts_as_set(fake_libc):
    environ = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072:glibc.x=1"}
    applied = apply_malloc_settings(environ=environ)
    assert "MALLOC_MMAP_THRESHOLD_" not in applied
    assert set(applied) == {"MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}


def test_a_refused_setting_is_not_reported(monkeypatch):
    libc = FakeLibc(refuse={MALLOPT_PARAMS["MALLOC_TOP_PAD_"]})
    monkeypatch.setattr(_malloc, "_glibc", lambda: libc)
    applied = apply_malloc_settings(environ={})
    assert set(applied) == {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"}
    assert len(libc.calls) == 3


def test_explicit_settings(fake_libc):
    applied = apply_malloc_settings({"MALLOC_TOP_PAD_": 4096}, environ={})
    assert applied == {"MALLOC_TOP_PAD_": 4096}
    assert fake_libc.calls == [(-2, 4096)]


def test_without_glibc_nothing_is_applied(monkeypatch):
    monkeypatch.setattr(_malloc, "_glibc", lambda: None)
    assert apply_malloc_settings(environ={}) == {}


def test_not_linux_means_no_libc(monkeypatch):
    monkeypatch.setattr(_malloc.sys, "platform", "darwin")
    assert _malloc._glibc() is None


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"MALLOC_ARENA_MAX_": 2}, r"unknown malloc setting 'MALLOC_ARENA_MAX_'"),
        ({"MALLOC_TOP_PAD_": "lots"}, r"MALLOC_TOP_PAD_ must be a number of bytes"),
        ({"MALLOC_TOP_PAD_": -1}, r"MALLOC_TOP_PAD_ must be a number of bytes"),
        ({"MALLOC_TOP_PAD_": True}, r"MALLOC_TOP_PAD_ must be a number of bytes"),
    ],
)
def test_bad_settings_are_refused(fake_libc, settings, match):
    with pytest.raises(ValueError, match=match):
        apply_malloc_settings(settings, environ={})
    assert fake_libc.calls == []


# A fresh interpreter: import the package (as a user or the CLI module does),
# then check with glibc's own counters that a 64 MiB block is still mmapped
# (the default threshold: nothing was applied); apply, and check that the same
# block now comes from the heap.
_PROBE = textwrap.dedent(
    """
    import ctypes, json, sys
    import genreclf, genreclf.cli, genreclf.pipeline, genreclf._training
    from genreclf import _malloc

    libc = ctypes.CDLL(None)
    fields = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks"
    fields += " fordblks keepcost"
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in fields.split()]
    libc.mallinfo2.restype = Info
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def mmapped_by_a_big_block():
        before = libc.mallinfo2().hblkhd
        block = libc.malloc(64 << 20)
        grew = libc.mallinfo2().hblkhd - before
        libc.free(block)
        return grew >= 64 << 20

    out = {"before": mmapped_by_a_big_block()}
    out["applied"] = _malloc.apply_malloc_settings()
    out["after"] = mmapped_by_a_big_block()
    out["again"] = _malloc.apply_malloc_settings(environ={"MALLOC_TOP_PAD_": "1"})
    json.dump(out, sys.stdout)
    """
)


@needs_glibc
@pytest.mark.integration
def test_import_does_not_apply_and_mallopt_accepts_the_values():
    if not hasattr(_malloc._glibc(), "mallinfo2"):
        pytest.skip("glibc < 2.33 has no mallinfo2")
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV} | {
        "GLIBC_TUNABLES": ""
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # importing genreclf left glibc's default (a 64 MiB block is mmapped) ...
    assert result["before"] is True
    # ... mallopt returned 1 for every setting ...
    assert result["applied"] == EXPECTED
    # ... and the block now stays on the heap
    assert result["after"] is False
    assert result["again"] == {
        k: v for k, v in EXPECTED.items() if k != "MALLOC_TOP_PAD_"
    }


@needs_glibc
def test_server_settings_are_accepted_by_mallopt():
    from genreclf._malloc import SERVER_MALLOC_ENV, apply_malloc_settings

    applied = apply_malloc_settings(SERVER_MALLOC_ENV, environ={})
    assert applied == SERVER_MALLOC_ENV
