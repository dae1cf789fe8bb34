"""Download and unpack the Free Music Archive (FMA) dataset.

:func:`download_fma` fetches ``fma_metadata.zip`` and ``fma_<subset>.zip``
from the dataset's official host with :mod:`pooch` (checksum verification,
progress bar), resumes a partial download with an HTTP ``Range`` request
(:class:`ResumableHTTPDownloader`), and unpacks the archives into the layout
that :func:`genreclf.datasets.load_fma` reads.
"""

import errno
import json
import os
import re
import shutil
import zipfile

from genreclf._files import atomic_write
from genreclf.exceptions import ChecksumError, DownloadError

__all__ = [
    "FMA_BASE_URL",
    "FMA_SHA1",
    "ChecksumError",
    "DownloadError",
    "ResumableHTTPDownloader",
    "download_fma",
]

#: The official FMA host, as given in the FMA README (github.com/mdeff/fma).
FMA_BASE_URL = "https://os.unil.cloud.switch.ch/fma/"

#: SHA-1 checksums of the archives, as published in the FMA README
#: (github.com/mdeff/fma, section "Data"). Every archive has one.
FMA_SHA1 = {
    "fma_metadata.zip": "f0df49ffe5f2a6008d7dc83c6915b31835dfe733",
    "fma_small.zip": "ade154f733639d52e35e32f5593efe5be76c6d70",
    "fma_medium.zip": "c67b69ea232021025fca9231fc1c7c1a063ab50b",
    "fma_large.zip": "497109f4dd721066b5ce5e5f250ec604dc78939e",
    "fma_full.zip": "0f0ace23fbe9ba30ecb7e95f763e435ea802b8ab",
}

_SUBSETS = ("small", "medium", "large", "full")
_CHUNK = 1 << 20


def _free_bytes(folder):
    return shutil.disk_usage(folder).free


def _check_space(folder, needed, what):
    """Raise ``OSError(ENOSPC)`` before writing when ``needed`` bytes don't fit."""
    free = _free_bytes(folder)
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"not enough disk space in {folder} for {what}: needs "
            f"{needed / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free; free some space "
            "(or choose another dest) and run again",
        )


def _disk_full(err, path, what):
    """Return a clear ``OSError(ENOSPC)`` for a write that hit a full disk."""
    return OSError(
        errno.ENOSPC,
        f"{path}: the disk is full ({what}); free some space and run again",
    )


def _write(f, chunk):
    f.write(chunk)


class ResumableHTTPDownloader:
    """A :mod:`pooch` downloader that resumes an interrupted download.

    Pooch's own ``HTTPDownloader`` starts from zero each time. This one
    streams into a fixed ``part_path`` (``<file>.part``); when that file
    exists it asks the server only for the missing bytes (an HTTP ``Range``
    request) and appends them. When the transfer is complete the part file is
    moved to the name pooch gives, pooch verifies the checksum and only then
    gives the file its final name: a partial file is never taken for a
    complete one. A server that ignores ``Range`` (answers 200) gets the file
    rewritten from the start.

    Parameters
    ----------
    part_path : str or path-like
        Where the bytes received so far are kept between attempts.
    progressbar : bool, default=True
        Show a ``tqdm`` progress bar (in bytes, starting at the resumed size).
    timeout : float, default=60
        Seconds to wait for the server to answer or send more bytes.
    chunk_size : int, default=1048576
        Bytes read and written at a time.

    Attributes
    ----------
    resumed_from : int
        Bytes already on disk when the last call started (0: from scratch).

    Raises
    ------
    DownloadError
        HTTP error, lost connection or short transfer; the part file is kept,
        so the next call resumes.
    OSError
        With ``errno.ENOSPC`` when the disk is full (also checked before the
        transfer when the server gives the size).

    Examples
    --------
    Resume-capable download of any file with pooch:

    >>> import pooch
    >>> from genreclf.download import ResumableHTTPDownloader
    >>> path = pooch.retrieve(
    ...     "https://example.org/big.zip", known_hash="sha1:...", fname="big.zip",
    ...     path="data", downloader=ResumableHTTPDownloader("data/big.zip.part"),
    ... )  # doctest: +SKIP
    """

    def __init__(self, part_path, progressbar=True, timeout=60, chunk_size=_CHUNK):
        self.part_path = os.fspath(part_path)
        self.progressbar = progressbar
        self.timeout = timeout
        self.chunk_size = chunk_size
        self.resumed_from = 0

    def __call__(self, url, output_file, pooch, check_only=False):
        """Download ``url`` to ``output_file`` (pooch's downloader protocol)."""
        import requests
        import urllib3

        headers = {"Accept-Encoding": "identity"}
        if check_only:
            try:
                with requests.head(
                    url, headers=headers, timeout=self.timeout, allow_redirects=True
                ) as r:
                    return r.ok
            except requests.RequestException:
                return False
        part = self.part_path
        start = os.path.getsize(part) if os.path.isfile(part) else 0
        if start:
            headers["Range"] = f"bytes={start}-"
        try:
            with requests.get(
                url, headers=headers, stream=True, timeout=self.timeout
            ) as r:
                if start and r.status_code == 416:  # nothing after `start`
                    total = _range_total(r.headers.get("Content-Range", ""))
                    if total != start:  # not this file: start again
                        os.remove(part)
                        return self(url, output_file, pooch)
                    self.resumed_from = start
                else:
                    if r.status_code >= 400:
                        raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
                    total = self._receive(r, part, start)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
            size = os.path.getsize(part) if os.path.isfile(part) else 0
            if not size:  # nothing arrived, so nothing is kept
                if os.path.isfile(part):
                    os.remove(part)
                raise DownloadError(
                    f"{url}: cannot download ({_reason(err)}); nothing was "
                    "received: check the network connection (or proxy) and run "
                    "the command again"
                ) from err
            raise DownloadError(
                f"{url}: download interrupted after {size} bytes ({err}); they are "
                f"kept in {part} and the next run resumes from there"
            ) from err
        size = os.path.getsize(part)
        if total is not None and size != total:
            raise DownloadError(
                f"{url}: the server sent {size} of {total} bytes; they are kept in "
                f"{part} and the next run resumes from there"
            )
        os.replace(part, output_file)

    def _receive(self, r, part, start):
        """Stream the body of response ``r`` into ``part``; return the full size."""
        from tqdm.auto import tqdm

        if start and r.status_code == 206:
            match = re.match(
                r"bytes (\d+)-\d+/(\d+|\*)", r.headers.get("Content-Range", "")
            )
            if not match or int(match[1]) != start:
                raise DownloadError(
                    f"{r.url}: the server answered a resume from byte {start} with "
                    f"Content-Range {r.headers.get('Content-Range')!r}"
                )
            total = None if match[2] == "*" else int(match[2])
            mode = "ab"
        else:  # 200: the whole file, whether or not we asked for a range
            start = 0
            length = r.headers.get("Content-Length")
            total = int(length) if length is not None else None
            mode = "wb"
        self.resumed_from = start
        if total is not None:
            _check_space(
                os.path.dirname(os.path.abspath(part)),
                total - start,
                f"the rest of {os.path.basename(r.url)}",
            )
        name = os.path.basename(part).removesuffix(".part")
        with (
            open(part, mode) as f,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=name,
                disable=not self.progressbar,
                leave=True,
            ) as bar,
        ):
            try:
                for chunk in _chunks(r, self.chunk_size):
                    _write(f, chunk)
                    bar.update(len(chunk))
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise _disk_full(
                        err, part, "the partial download is kept and resumes"
                    ) from err
                raise
        return total


def _reason(err):
    """The innermost cause of a requests/urllib3 error, in a few words."""
    cause, seen = err, {id(err)}
    while cause.__context__ is not None and id(cause.__context__) not in seen:
        cause = cause.__context__
        seen.add(id(cause))
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _chunks(r, size):
    """Yield the body of response ``r`` as it arrives.

    ``read1`` hands over every byte received before a connection drops (a
    full-size ``read`` would discard them), so a resume loses nothing.
    """
    read1 = getattr(r.raw, "read1", None)
    if read1 is None:  # urllib3 < 2
        yield from r.iter_content(chunk_size=size)
        return
    while chunk := read1(size):
        yield chunk


def _range_total(content_range):
    match = re.match(r"bytes \*/(\d+)", content_range)
    return int(match[1]) if match else None


def _safe_target(dest, name, archive):
    """Return where a zip member extracts to; refuse names that leave ``dest``."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise ValueError(f"{archive}: unsafe member name {name!r} in the archive")
    return os.path.join(dest, *[p for p in parts if p not in ("", ".")])


def _unpack(archive, dest, progress):
    """Extract ``archive`` into ``dest``; return the top-level names it holds.

    Each member is written under a temporary name and renamed when complete;
    members already present with the right size are skipped, so an
    interrupted unpack continues where it stopped.
    """
    from tqdm.auto import tqdm

    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as err:
        raise ChecksumError(
            f"{archive}: not a valid zip archive ({err}); delete it and run again"
        ) from err
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        targets = [(i, _safe_target(dest, i.filename, archive)) for i in members]
        top = sorted({os.path.relpath(t, dest).split(os.sep)[0] for _, t in targets})
        todo = [
            (i, t)
            for i, t in targets
            if not (os.path.isfile(t) and os.path.getsize(t) == i.file_size)
        ]
        _check_space(dest, sum(i.file_size for i, _ in todo), f"unpacking {archive}")
        for info, target in tqdm(
            todo,
            desc=f"unpack {os.path.basename(archive)}",
            unit="file",
            disable=not progress,
        ):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                with zf.open(info) as src, atomic_write(target) as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise _disk_full(err, target, f"unpacking {archive}") from err
                raise
            except (zipfile.BadZipFile, EOFError) as err:
                raise ChecksumError(
                    f"{archive}: member {info.filename} is corrupt ({err})"
                ) from err
    return top


def _marker_path(dest, name):
    return os.path.join(dest, f".{name}.unpacked")


def _already_unpacked(dest, name, sha1):
    try:
        with open(_marker_path(dest, name), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and sha1 is not None
        and marker.get("sha1") == sha1
        and all(os.path.exists(os.path.join(dest, t)) for t in marker.get("top", []))
    )


def _fetch(name, url, dest, sha1, progress, timeout):
    """Download one archive with pooch (verified, resumable); return its path."""
    import pooch

    archive = os.path.join(dest, name)
    downloader = ResumableHTTPDownloader(
        archive + ".part", progressbar=progress, timeout=timeout
    )
    try:
        path = pooch.retrieve(
            url,
            known_hash=None if sha1 is None else f"sha1:{sha1}",
            fname=name,
            path=dest,
            downloader=downloader,
        )
    except ValueError as err:
        if "hash" not in str(err):
            raise
        got = re.search(r"but got ([0-9a-fA-F]+)", str(err))
        raise ChecksumError(
            f"{archive}: SHA-1 checksum mismatch, the download is corrupt "
            f"(expected {sha1}, got {got[1] if got else 'another value'}); it was "
            f"deleted and not unpacked. Run again to download it from scratch."
        ) from err
    if os.path.exists(downloader.part_path):  # left from before a complete copy
        os.remove(downloader.part_path)
    return path


def download_fma(
    subset="small",
    dest=".",
    *,
    base_url=FMA_BASE_URL,
    known_hashes=None,
    keep_archives=True,
    progress=True,
    timeout=60,
):
    """Download the Free Music Archive (FMA) and unpack it for :func:`load_fma`.

    Fetches ``fma_metadata.zip`` and ``fma_<subset>.zip`` (with :mod:`pooch`),
    verifies each against the SHA-1 checksum published in the FMA README
    (:data:`FMA_SHA1`), and unpacks them, leaving::

        dest/fma_metadata/tracks.csv, genres.csv, ...
        dest/fma_<subset>/<3 digits>/<6 digits>.mp3

    An interrupted download resumes where it stopped (the bytes received so
    far are kept in ``dest/<archive>.part``) and a part file is never taken
    for a complete archive: it gets the archive's name only once its checksum
    matches. Archives already downloaded and unpacked are skipped, so a
    second call is cheap.

    Parameters
    ----------
    subset : {"small", "medium", "large", "full"}, default="small"
        The audio archive: ``fma_small`` (8,000 30 s clips, 7.2 GiB),
        ``fma_medium`` (25,000, 22 GiB), ``fma_large`` (106,574, 93 GiB),
        ``fma_full`` (106,574 untrimmed tracks, 879 GiB). Sizes from the FMA
        README.
    dest : str or path-like, default="."
        The folder to download into and unpack in (created if needed); pass
        it as ``root`` to :func:`~genreclf.datasets.load_fma`.
    base_url : str, default=FMA_BASE_URL
        Where the archives are served (``<base_url><archive name>``), e.g. a
        mirror.
    known_hashes : dict of str to str or None, default=None
        Replace entries of :data:`FMA_SHA1` (archive name -> SHA-1 hex), e.g.
        for a mirror with other archives. A value of None skips the check for
        that archive (not recommended).
    keep_archives : bool, default=True
        Keep the zip archives after unpacking (pooch then re-verifies them
        instead of downloading again). False deletes each once unpacked.
    progress : bool, default=True
        Show progress bars for downloading and unpacking, and pooch's log.
    timeout : float, default=60
        Seconds to wait for the server before giving up (then the next call
        resumes).

    Returns
    -------
    root : str
        The absolute path of ``dest``, ready for ``load_fma(root, subset)``.

    Raises
    ------
    ChecksumError
        An archive does not match its checksum; it is deleted, never unpacked.
    DownloadError
        HTTP error or an interrupted transfer; run again to resume.
    OSError
        With ``errno.ENOSPC`` when the disk is (or would be) full; the message
        says how much space is needed. A partial download is kept.

    See Also
    --------
    genreclf.datasets.load_fma : Read the unpacked dataset as ``(paths, y)``.

    Notes
    -----
    Unpacking needs about as much space again as the archive (mp3 files do
    not compress): ``keep_archives=False`` gives the archive's space back
    once it is unpacked. The FMA archives are bzip2-compressed zip files,
    which Python's :mod:`zipfile` reads.

    Examples
    --------
    >>> from genreclf.download import FMA_SHA1, download_fma
    >>> FMA_SHA1["fma_small.zip"]
    'ade154f733639d52e35e32f5593efe5be76c6d70'
    >>> root = download_fma("small", "data/fma")  # doctest: +SKIP
    >>> from genreclf.datasets import load_fma
    >>> paths, y = load_fma(root, split="training")  # doctest: +SKIP
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of {list(_SUBSETS)}, got {subset!r}")
    hashes = dict(FMA_SHA1)
    hashes.update(known_hashes or {})
    dest = os.path.abspath(os.fspath(dest))
    os.makedirs(dest, exist_ok=True)
    base_url = base_url if base_url.endswith("/") else base_url + "/"

    import pooch

    logger = pooch.get_logger()
    level = logger.level
    if not progress:
        logger.setLevel("WARNING")
    try:
        for name in ("fma_metadata.zip", f"fma_{subset}.zip"):
            sha1 = hashes.get(name)
            if _already_unpacked(dest, name, sha1):
                continue
            archive = _fetch(name, base_url + name, dest, sha1, progress, timeout)
            top = _unpack(archive, dest, progress)
            with atomic_write(_marker_path(dest, name), "w") as f:
                json.dump({"sha1": sha1, "top": top}, f)
            if not keep_archives:
                os.remove(archive)
    finally:
        logger.setLevel(level)
    return dest
