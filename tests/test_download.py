"""Tests for genreclf.download against a local HTTP server with Range support.

Nothing leaves 127.0.0.1: the server runs in a thread on an ephemeral port and
serves FMA-layout zip archives that the tests build.
"""

import errno
import hashlib
import http.server
import inspect
import re
import threading
import zipfile
from pathlib import Path

import pytest

from genreclf import download
from genreclf.datasets import DatasetWarning, load_fma
from genreclf.download import (
    FMA_BASE_URL,
    FMA_SHA1,
    ChecksumError,
    DownloadError,
    ResumableHTTPDownloader,
    download_fma,
)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` ({name: bytes}) under /fma/, honouring Range."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _answer(self, body):
        server = self.server
        name = self.path.rsplit("/", 1)[-1]
        data = server.files.get(name)
        rng = self.headers.get("Range")
        server.requests.append((self.command, name, rng))
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and not server.ignore_range:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header(
                "Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}"
            )
            payload = data[start:]
        else:
            self.send_response(200)
            payload = data
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not body:
            return
        cut = server.cut_after.pop(name, None)
        if cut is not None:  # the connection drops mid-transfer
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early (a test's purpose) is no error here


@pytest.fixture
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests, httpd.cut_after = {}, [], {}
    httpd.ignore_range = False
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/fma/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _zip_tree(src, top, out):
    """Zip ``src/top`` as FMA does (bzip2), members named ``top/...``."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for path in sorted((src / top).rglob("*")):
            zf.write(path, path.relative_to(src).as_posix())
    return out.read_bytes()


@pytest.fixture(scope="module")
def archives(tmp_path_factory, fma_layout):
    """{name: bytes} of fma_metadata.zip and fma_small.zip in FMA's layout."""
    src = fma_layout(tmp_path_factory.mktemp("fma_src"))
    (src / "fma_metadata" / "genres.csv").write_text("genre_id,title\n21,Hip-Hop\n")
    out = tmp_path_factory.mktemp("fma_zips")
    return {
        "fma_metadata.zip": _zip_tree(src, "fma_metadata", out / "fma_metadata.zip"),
        "fma_small.zip": _zip_tree(src, "fma_small", out / "fma_small.zip"),
    }


@pytest.fixture
def hashes(archives):
    return {n: hashlib.sha1(data).hexdigest() for n, data in archives.items()}


def fetch(server, dest, hashes, **kwargs):
    return download_fma(
        "small",
        dest,
        base_url=server.url,
        known_hashes=hashes,
        progress=False,
        **kwargs,
    )


def gets(server, name=None):
    return [r for r in server.requests if r[0] == "GET" and name in (None, r[1])]


def load_ids(root):
    with pytest.warns(DatasetWarning, match="known-bad"):
        paths, y = load_fma(root)
    return [int(Path(p).stem) for p in paths], list(y)


def test_published_checksums_and_defaults():
    # From the FMA README (github.com/mdeff/fma).
    assert FMA_SHA1 == {
        "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",
        "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",
        "fma_medium.zip": "c67b69ea232021025fca9231fc1c7c1a063ab50b",
        "fma_large.zip": "497109f4dd721066b5ce5e5f250ec604dc78939e",
        "fma_full.zip": "0f0ace23fbe9ba30ecb7e95f763e435ea802b8ab",
    }
    params = inspect.signature(download_fma).parameters
    assert (
        params["base_url"].default
        == FMA_BASE_URL
        == "https://os.unil.cloud.switch.ch/fma/"
    )
    assert params["subset"].default == "small"


def test_download_unpack_and_load(tmp_path, server, archives, hashes):
    server.files.update(archives)
    root = fetch(server, tmp_path / "data", hashes)
    assert root == str(tmp_path / "data")
    assert load_ids(root) == (
        [2, 5, 10, 140, 141],
        ["Hip-Hop", "Hip-Hop", "Pop", "Folk", "Folk"],
    )
    assert (Path(root) / "fma_metadata" / "genres.csv").is_file()
    assert gets(server) == [
        ("GET", "fma_metadata.zip", None),
        ("GET", "fma_small.zip", None),
    ]
    assert (Path(root) / "fma_small.zip").read_bytes() == archives["fma_small.zip"]
    assert not list(Path(root).glob("*.part")) and not list(Path(root).rglob("*.part"))
    # A second call finds everything unpacked: no request at all.
    n = len(server.requests)
    assert fetch(server, root, hashes) == root
    assert len(server.requests) == n


def test_resume_partial_download(tmp_path, server, archives, hashes):
    server.files.update(archives)
    data = archives["fma_small.zip"]
    half = len(data) // 2
    tmp_path.joinpath("fma_small.zip.part").write_bytes(data[:half])
    fetch(server, tmp_path, hashes)
    assert gets(server, "fma_small.zip") == [("GET", "fma_small.zip", f"bytes={half}-")]
    assert (tmp_path / "fma_small.zip").read_bytes() == data
    assert not (tmp_path / "fma_small.zip.part").exists()
    assert load_ids(tmp_path)[0] == [2, 5, 10, 140, 141]


def test_interrupted_download_resumes(tmp_path, server, archives, hashes):
    server.files.update(archives)
    data = archives["fma_small.zip"]
    server.cut_after["fma_small.zip"] = 1000
    with pytest.raises(
        DownloadError,
        match=r"fma_small.zip: download interrupted after "
        r"1000 bytes.*next run resumes",
    ):
        fetch(server, tmp_path, hashes)
    # The partial file is kept under its .part name only.
    assert (tmp_path / "fma_small.zip.part").stat().st_size == 1000
    assert not (tmp_path / "fma_small.zip").exists()
    assert not (tmp_path / "fma_small").exists()
    fetch(server, tmp_path, hashes)
    assert gets(server, "fma_small.zip")[-1] == ("GET", "fma_small.zip", "bytes=1000-")
    assert (tmp_path / "fma_small.zip").read_bytes() == data
    assert load_ids(tmp_path)[0] == [2, 5, 10, 140, 141]


def test_server_ignoring_range_restarts_from_zero(tmp_path, server, archives, hashes):
    server.files.update(archives)
    server.ignore_range = True
    tmp_path.joinpath("fma_small.zip.part").write_bytes(b"x" * 500)
    fetch(server, tmp_path, hashes)
    assert (tmp_path / "fma_small.zip").read_bytes() == archives["fma_small.zip"]


def test_complete_part_file_answered_416(tmp_path, server, archives, hashes):
    server.files.update(archives)
    data = archives["fma_small.zip"]
    tmp_path.joinpath("fma_small.zip.part").write_bytes(data)
    fetch(server, tmp_path, hashes)
    assert gets(server, "fma_small.zip") == [
        ("GET", "fma_small.zip", f"bytes={len(data)}-")
    ]
    assert (tmp_path / "fma_small.zip").read_bytes() == data


def test_corrupted_archive_is_rejected(tmp_path, server, archives, hashes):
    data = bytearray(archives["fma_small.zip"])
    data[len(data) // 2] ^= 0xFF
    server.files.update(archives, **{"fma_small.zip": bytes(data)})
    expected = hashes["fma_small.zip"]
    with pytest.raises(
        ChecksumError,
        match=rf"fma_small.zip: SHA-1 checksum mismatch.*expected {expected}, got "
        r"[0-9a-f]{40}.*deleted and not unpacked",
    ):
        fetch(server, tmp_path, hashes)
    assert not (tmp_path / "fma_small.zip").exists()
    assert not (tmp_path / "fma_small.zip.part").exists()
    assert not (tmp_path / "fma_small").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [
        "fma_metadata",
        "fma_metadata.zip",
    ]
    # Once the server has the right bytes, a new run starts from scratch.
    server.files.update(archives)
    fetch(server, tmp_path, hashes)
    assert gets(server, "fma_small.zip")[-1] == ("GET", "fma_small.zip", None)
    assert load_ids(tmp_path)[0] == [2, 5, 10, 140, 141]


def test_wrong_partial_file_is_rejected(tmp_path, server, archives, hashes):
    server.files.update(archives)
    data = archives["fma_small.zip"]
    tmp_path.joinpath("fma_small.zip.part").write_bytes(b"\0" * (len(data) // 3))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch(server, tmp_path, hashes)
    assert not (tmp_path / "fma_small.zip").exists()
    assert not (tmp_path / "fma_small.zip.part").exists()


def test_existing_wrong_archive_is_downloaded_again(tmp_path, server, archives, hashes):
    server.files.update(archives)
    (tmp_path / "fma_small.zip").write_bytes(b"an old, wrong archive")
    fetch(server, tmp_path, hashes)
    assert (tmp_path / "fma_small.zip").read_bytes() == archives["fma_small.zip"]


def test_keep_archives_false(tmp_path, server, archives, hashes):
    server.files.update(archives)
    fetch(server, tmp_path, hashes, keep_archives=False)
    assert not list(tmp_path.glob("*.zip"))
    assert load_ids(tmp_path)[0] == [2, 5, 10, 140, 141]
    n = len(server.requests)
    fetch(server, tmp_path, hashes, keep_archives=False)
    assert len(server.requests) == n


def test_deleted_audio_folder_is_unpacked_again(tmp_path, server, archives, hashes):
    import shutil

    server.files.update(archives)
    fetch(server, tmp_path, hashes)
    shutil.rmtree(tmp_path / "fma_small")
    fetch(server, tmp_path, hashes)  # the kept archive is verified, not fetched
    assert len(gets(server)) == 2
    assert load_ids(tmp_path)[0] == [2, 5, 10, 140, 141]


def test_http_error(tmp_path, server, archives, hashes):
    server.files["fma_metadata.zip"] = archives["fma_metadata.zip"]
    with pytest.raises(DownloadError, match=r"fma_small.zip: HTTP 404 Not Found"):
        fetch(server, tmp_path, hashes)


def test_disk_full_before_download(tmp_path, server, archives, hashes, monkeypatch):
    server.files.update(archives)
    monkeypatch.setattr(download, "_free_bytes", lambda folder: 100)
    with pytest.raises(
        OSError,
        match=r"not enough disk space .* for the rest of "
        r"fma_metadata.zip",
    ) as info:
        fetch(server, tmp_path, hashes)
    assert info.value.errno == errno.ENOSPC


def test_disk_full_while_writing(tmp_path, server, archives, hashes, monkeypatch):
    server.files.update(archives)
    written = []

    def full_disk(f, chunk):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(chunk))
        f.write(chunk)

    monkeypatch.setattr(download, "_write", full_disk)
    downloader = ResumableHTTPDownloader(
        tmp_path / "a.zip.part", progressbar=False, chunk_size=256
    )
    with pytest.raises(
        OSError,
        match=r"a.zip.part: the disk is full \(the partial "
        r"download is kept and resumes\)",
    ) as info:
        downloader(server.url + "fma_small.zip", str(tmp_path / "out"), None)
    assert info.value.errno == errno.ENOSPC
    assert (tmp_path / "a.zip.part").stat().st_size == 256


def test_unpack_checks_space_and_resumes(tmp_path, archives, monkeypatch):
    archive = tmp_path / "fma_small.zip"
    archive.write_bytes(archives["fma_small.zip"])
    monkeypatch.setattr(download, "_free_bytes", lambda folder: 10)
    with pytest.raises(OSError, match="not enough disk space .* for unpacking") as info:
        download._unpack(str(archive), str(tmp_path), progress=False)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert download._unpack(str(archive), str(tmp_path), progress=False) == [
        "fma_small"
    ]
    # Members already unpacked are not written again.
    copies = []
    monkeypatch.setattr(download.shutil, "copyfileobj", lambda *a: copies.append(a))
    download._unpack(str(archive), str(tmp_path), progress=False)
    assert copies == []


def test_unpack_refuses_unsafe_names(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fma_small/../../evil.txt", b"x")
    with pytest.raises(
        ValueError, match=r"unsafe member name 'fma_small/../../evil.txt'"
    ):
        download._unpack(str(archive), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "evil.txt").exists()


def test_unpack_not_a_zip(tmp_path):
    archive = tmp_path / "fma_small.zip"
    archive.write_bytes(b"not a zip")
    with pytest.raises(ChecksumError, match="fma_small.zip: not a valid zip archive"):
        download._unpack(str(archive), str(tmp_path), progress=False)


def test_downloader_check_only(server, archives):
    server.files.update(archives)
    downloader = ResumableHTTPDownloader("unused.part", progressbar=False)
    assert downloader(server.url + "fma_small.zip", None, None, check_only=True) is True
    assert downloader(server.url + "nothing.zip", None, None, check_only=True) is False
    assert server.requests[-1][0] == "HEAD"


def test_invalid_subset(tmp_path):
    with pytest.raises(ValueError, match="subset must be one of"):
        download_fma("tiny", tmp_path)
    assert not list(tmp_path.iterdir())


def test_no_network_says_nothing_was_kept(tmp_path):
    """Issue 15: without a network the error claimed a ``.part`` file was kept."""
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="nothing was received") as err:
        download_fma("small", dest=tmp_path, base_url=f"http://127.0.0.1:{port}/")
    assert ".part" not in str(err.value) and "kept" not in str(err.value)
    assert "Connection refused" in str(err.value)
    assert not list(tmp_path.rglob("*.part"))
