"""Download PASCAL VOC 2012 (about 2 GB), resumably, checked and safely unpacked.

    download_voc("data")    # leaves data/VOCdevkit/VOC2012/... and returns that folder

The file comes from VOC_URL, or from a mirror named by the environment variable
FCNLITE_VOC_URL; either way it must have VOC_MD5. It is kept as
<root>/VOCtrainval_11-May-2012.tar, so the official tar, downloaded some other way
and put there, is checked and unpacked without any download.

The bytes go to <root>/<name>.part first. If the transfer stops (network,
Ctrl-C), running again asks the server only for the rest (an HTTP Range
request, "bytes=<size of .part>-") and appends it. A finished file is checked
against its MD5 before anything is unpacked; only then is it renamed to
<name>. Unpacking goes to a temporary folder under root and is moved into place
at the end, so a VOC2012 folder that exists is always complete. Archive members
that would land outside root (absolute paths, "..", links) are refused.
Only the standard library's urllib is used.
"""
import hashlib
import http.client
import os
import shutil
import signal
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from ..errors import first_line
from .errors import DataError

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"
VOC_ARCHIVE = "VOCtrainval_11-May-2012.tar"
# a mirror of the same file, for when Oxford's server is slow or unreachable: its MD5 is checked all the same
MIRROR_VARIABLE = "FCNLITE_VOC_URL"

CHUNK_BYTES = 1 << 20


UNPACKING_PREFIX = ".unpacking-"   # extract_tar's staging folder inside the destination
STALE_SECONDS = 3600               # a staging folder untouched this long was left by a killed unpacking


class DownloadError(DataError):
    """A download that failed or a file that did not check out: "<url or file>: <what happened>"."""


class ServerError(DownloadError):
    """The server could not be reached, or refused the file (download_voc adds where else to get it)."""


class DownloadInterrupted(DownloadError):
    """Ctrl-C during a download or its unpacking: what is kept, and that the same command goes on.
    signal_number: the programs (cli.run_main) print the message as it is, as for an interrupted
    training, and exit with 128 + SIGINT = 130, as a shell does for Ctrl-C."""
    signal_number = signal.SIGINT


def file_md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _total_from_content_range(header):
    """The full size from a Content-Range header ("bytes 100-199/200" or "bytes */200"), else None."""
    if not header or "/" not in header:
        return None
    total = header.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _open(url, offset, timeout):
    """The server's response for the bytes of `url` from `offset` on; None when there are none left."""
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:   # "range not satisfiable": nothing after offset
            total = _total_from_content_range(error.headers.get("Content-Range"))
            if total is None or total == offset:
                return None
            raise DownloadError(url, f"server holds {total} bytes but {offset} were already downloaded: "
                                     f"delete the .part file and run again") from None
        raise ServerError(url, f"download failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:   # (ValueError: no URL, "mirror.org/VOC.tar")
        reason = getattr(error, "reason", error)
        raise ServerError(url, f"download failed: {reason}") from None


def download_file(url, path, md5=None, progress=True, timeout=60):
    """Fetch `url` into `path`, resuming `path`.part if it exists; check the MD5 when given. Returns path."""
    path = os.fspath(path)
    if os.path.exists(path):
        if md5 is None or file_md5(path) == md5.lower():
            return path
        raise DownloadError(path, f"exists but its MD5 is not {md5}: delete it to download it again")
    part = path + ".part"
    try:
        return _download_part(url, path, part, md5, progress, timeout)
    except KeyboardInterrupt:   # (the file was closed on the way out: what reached it stays)
        if not os.path.exists(part):
            raise DownloadInterrupted(url, "download interrupted before any byte came: run the same command "
                                           "again to start it") from None
        size = os.path.getsize(part)
        raise DownloadInterrupted(part, f"download interrupted after {size / 2**20:.1f} MB; the partial file is "
                                        f"kept: run the same command again to resume it") from None


def _download_part(url, path, part, md5, progress, timeout):
    """download_file's transfer into `part` (appending to what it holds), its check, and its rename to path."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    response = _open(url, offset, timeout)
    if response is not None:
        with response:
            if response.status == 206:
                # the server sends only the rest: append it (after checking it starts where .part ends)
                mode = "ab"
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {offset}-"):
                    raise DownloadError(url, f"asked for bytes from {offset} on, server sent {content_range!r}")
            else:
                # 200: the server ignored the Range header and sends everything: start over
                mode, offset = "wb", 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else None
            written = offset
            with open(part, mode) as file, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                unit_divisor=1024, desc=os.path.basename(path),
                                                disable=not progress) as bar:
                try:
                    for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                        file.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as error:
                    raise DownloadError(url, f"connection lost after {written} bytes ({error}); "
                                             f"run again to resume") from None
        if total is not None and written != total:
            raise DownloadError(url, f"transfer ended after {written} of {total} bytes; run again to resume")
    if md5 is not None:
        actual = file_md5(part)
        if actual != md5.lower():
            # a .part that is complete but wrong would be "resumed" forever: remove it
            os.remove(part)
            raise DownloadError(part, f"MD5 {actual} does not match the expected {md5.lower()}; "
                                      f"the file was deleted so that the next run downloads it afresh")
    os.replace(part, path)
    return path


def _check_member(member, archive):
    """Refuse archive members that could write outside the destination folder."""
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise DownloadError(archive, f"member {name!r} would be written outside the destination; refusing to unpack")
    if member.issym() or member.islnk():
        raise DownloadError(archive, f"member {name!r} is a link; refusing to unpack links")
    if not (member.isfile() or member.isdir()):
        raise DownloadError(archive, f"member {name!r} is not a file or a folder; refusing to unpack it")


def _move_into(source, destination):
    """Move `source` to `destination`, merging into folders that already exist there."""
    if os.path.isdir(source) and os.path.isdir(destination):
        for entry in os.listdir(source):
            _move_into(os.path.join(source, entry), os.path.join(destination, entry))
    else:
        os.replace(source, destination)


def extract_tar(archive, destination):
    """Unpack a tar into `destination` via a temporary folder, after checking every member is safe."""
    os.makedirs(destination, exist_ok=True)
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError) as error:   # (tarfile lists each method it tried, a line each)
        raise DownloadError(archive, f"cannot be opened as a tar archive ({first_line(error)})") from None
    for entry in os.listdir(destination):   # left by an unpacking killed midway (kill -9, power loss)
        stale = os.path.join(destination, entry)
        # not one that another process is filling now: VOC unpacks in minutes, and writes all along
        if entry.startswith(UNPACKING_PREFIX) and time.time() - os.path.getmtime(stale) > STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=UNPACKING_PREFIX, dir=destination)
    try:
        with tar:
            try:
                members = tar.getmembers()
            except (tarfile.TarError, EOFError) as error:   # cut short: its md5 was not checked, or matched
                raise DownloadError(archive, f"is damaged or cut short ({first_line(error)}): delete it and "
                                             f"download it again") from None
            for member in members:
                _check_member(member, archive)
            if hasattr(tarfile, "data_filter"):   # Python >= 3.11.4 / 3.12: the standard library checks too
                tar.extractall(staging, members, filter="data")
            else:
                tar.extractall(staging, members)
        for entry in os.listdir(staging):
            _move_into(os.path.join(staging, entry), os.path.join(destination, entry))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _voc_is_complete(voc_dir):
    return all(os.path.exists(os.path.join(voc_dir, *parts)) for parts in
               (("JPEGImages",), ("SegmentationClass",), ("ImageSets", "Segmentation", "trainval.txt")))


def download_voc(root, url=None, md5=VOC_MD5, progress=True, keep_archive=False, timeout=60):
    """Download and unpack VOC 2012 trainval under root (skipped when already there); returns the VOC2012 folder.

    url:          default $FCNLITE_VOC_URL (a mirror), else VOC_URL; the file is kept as
                  <root>/VOCtrainval_11-May-2012.tar whichever it is, so that one put there is used
    keep_archive: keep the .tar after unpacking (default: delete it, it is 2 GB; one put in root is kept)
    """
    # the programs (no url) keep the file under the official name whichever server sends it, so that the tar
    # got elsewhere and put in root is found; a caller's own url names its own file
    official = url is None
    mirror = os.environ.get(MIRROR_VARIABLE) if official else None
    url = url or mirror or VOC_URL
    if os.path.exists(root) and not os.path.isdir(root):
        raise DownloadError(root, "is a file: give a folder for the VOC data")
    os.makedirs(root, exist_ok=True)
    # root may be the folder holding VOCdevkit, or VOCdevkit or VOC2012 itself, as the readers accept:
    # the first of those that exists is the one they read, so it is the one that must be complete
    for already in (os.path.join(root, "VOCdevkit", "VOC2012"), os.path.join(root, "VOC2012"), root):
        if os.path.isdir(os.path.join(already, "JPEGImages")):
            if _voc_is_complete(already):
                return os.fspath(already)
            break
    voc_dir = os.path.join(root, "VOCdevkit", "VOC2012")
    name = VOC_ARCHIVE if official else os.path.basename(urllib.parse.urlparse(url).path) or "VOCtrainval.tar"
    given = os.path.exists(os.path.join(root, name))   # a tar the user put there: theirs to keep
    try:
        archive = download_file(url, os.path.join(root, name), md5=md5, progress=progress, timeout=timeout)
    except ServerError as error:
        if not official:   # a file of the caller's own: the ways to VOC's tar do not apply
            raise
        where = (f"check {MIRROR_VARIABLE}, which names this mirror" if mirror
                 else f"set {MIRROR_VARIABLE} to a mirror's URL of the same file")
        raise ServerError(error.path, f"{error.problem}: {where}, or put {VOC_ARCHIVE}, downloaded elsewhere, in "
                                      f"{os.path.join(root, '')} (either is checked against its MD5)") from None
    try:
        extract_tar(archive, root)
    except KeyboardInterrupt:   # (extract_tar removed its staging folder on the way out)
        raise DownloadInterrupted(archive, "unpacking interrupted; the downloaded file is kept: run the same "
                                           "command again to unpack it") from None
    if not _voc_is_complete(voc_dir):
        raise DownloadError(archive, "unpacked, but VOCdevkit/VOC2012 with JPEGImages, SegmentationClass and "
                                     "ImageSets/Segmentation/trainval.txt is not there: "
                                     "is it the VOC 2012 trainval tar?")
    if not keep_archive and not given:
        os.remove(archive)
    elif not keep_archive:
        print(f"note: {archive} was there before this run, and is kept: delete it if you no longer need it (2 GB)")
    return voc_dir
