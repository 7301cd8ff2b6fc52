"""download_voc against a loopback HTTP server: full download, resume, checksum and unsafe archives.

The server runs in a thread on 127.0.0.1 (no network), serves one tar made by
the test, honours "Range: bytes=N-" (or ignores it, when asked to), and logs
every request so that a test can check exactly what was asked for.
"""
import functools
import hashlib
import http.server
import io
import os
import re
import tarfile
import threading

import pytest

from fcnlite.data import DataError, VOCSegmentation, make_synthetic_voc
from fcnlite.data.download import DownloadError, download_voc, extract_tar


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.payload at any path; answers "Range: bytes=N-" with 206 (or 416 past the end)."""

    def do_GET(self):
        payload = self.server.payload
        if payload is None:
            self.send_error(404)
            self.server.log.append((self.headers.get("Range"), 404))
            return
        requested = self.headers.get("Range")
        start = 0
        if requested and self.server.honour_range == "from the start":   # 206, but not the part asked for
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(payload) - 1}/{len(payload)}")
        elif requested and self.server.honour_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.server.log.append((requested, 0))
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        else:
            self.send_response(200)
        body = payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_after is not None:      # a connection that breaks mid-transfer
            body = body[:self.server.cut_after]
            self.close_connection = True
        self.wfile.write(body)
        self.server.log.append((requested, len(body)))

    def log_message(self, *args):   # keep test output quiet
        pass


@pytest.fixture
def serve():
    """serve(payload, honour_range=True, cut_after=None) -> (url, server); server.log lists (Range, bytes sent)."""
    servers = []

    def start(payload, honour_range=True, cut_after=None):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
        server.payload, server.honour_range, server.log = payload, honour_range, []
        server.cut_after = cut_after
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/voc/VOCtrainval_test.tar", server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def voc_tar(tmp_path_factory):
    """(tar bytes, md5) of a real VOC-layout tree: VOCdevkit/VOC2012/... with 3 images."""
    source = tmp_path_factory.mktemp("voc_source")
    make_synthetic_voc(source, n_train=2, n_val=1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(source / "VOCdevkit", arcname="VOCdevkit")
    payload = buffer.getvalue()
    return payload, hashlib.md5(payload).hexdigest()


def unpacked_correctly(root):
    return len(VOCSegmentation(root, "trainval")) == 3


def leftovers(root):
    return [name for name in os.listdir(root) if name.endswith(".part") or name.startswith(".unpacking-")]


def test_download_fetches_checks_and_unpacks_the_voc_layout(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, server = serve(payload)
    log = server.log
    voc_dir = download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert voc_dir == os.path.join(tmp_path, "VOCdevkit", "VOC2012")
    assert unpacked_correctly(tmp_path)
    assert log == [(None, len(payload))]
    assert not os.path.exists(tmp_path / "VOCtrainval_test.tar")     # archive removed after unpacking
    assert leftovers(tmp_path) == []
    # a second call finds the data in place and asks the server nothing
    assert download_voc(tmp_path, url=url, md5=md5, progress=False) == voc_dir
    assert len(log) == 1


@pytest.mark.parametrize("inner", [("VOCdevkit",), ("VOCdevkit", "VOC2012")])
def test_download_into_the_tree_itself_finds_the_data_there(tmp_path, serve, voc_tar, inner):
    """The readers take VOCdevkit or VOC2012 itself as the root; so does --download, without fetching again."""
    payload, md5 = voc_tar
    url, server = serve(payload)
    download_voc(tmp_path, url=url, md5=md5, progress=False)
    root = tmp_path.joinpath(*inner)
    assert download_voc(root, url=url, md5=md5, progress=False) == str(tmp_path / "VOCdevkit" / "VOC2012")
    assert len(server.log) == 1 and not (root / "VOCdevkit").exists()


def test_download_can_keep_the_archive(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, _ = serve(payload)
    download_voc(tmp_path, url=url, md5=md5, progress=False, keep_archive=True)
    assert (tmp_path / "VOCtrainval_test.tar").read_bytes() == payload


def test_download_resumes_a_partial_file_asking_only_for_the_rest(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, server = serve(payload)
    log = server.log
    already = len(payload) // 3
    (tmp_path / "VOCtrainval_test.tar.part").write_bytes(payload[:already])
    download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert log == [(f"bytes={already}-", len(payload) - already)]
    assert unpacked_correctly(tmp_path) and leftovers(tmp_path) == []


def test_download_interrupted_mid_transfer_resumes_on_the_next_run(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, server = serve(payload, cut_after=5000)
    with pytest.raises(DownloadError, match="run again to resume"):
        download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert (tmp_path / "VOCtrainval_test.tar.part").read_bytes() == payload[:5000]
    assert not os.path.exists(tmp_path / "VOCdevkit")
    server.cut_after = None
    download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert server.log == [(None, 5000), ("bytes=5000-", len(payload) - 5000)]
    assert unpacked_correctly(tmp_path)


def test_download_starts_over_when_the_server_ignores_range(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, server = serve(payload, honour_range=False)
    log = server.log
    (tmp_path / "VOCtrainval_test.tar.part").write_bytes(payload[:1000])
    download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert log == [("bytes=1000-", len(payload))]
    assert unpacked_correctly(tmp_path)


def test_a_partial_answer_from_another_offset_is_refused_and_the_part_file_kept(tmp_path, serve, voc_tar):
    # appended, the server's bytes from 0 would have made a file of the wrong bytes at the wrong places;
    # without an MD5 to check (md5=None) nothing else would have noticed
    payload, _ = voc_tar
    url, server = serve(payload, honour_range="from the start")
    (tmp_path / "VOCtrainval_test.tar.part").write_bytes(payload[:1000])
    with pytest.raises(DownloadError) as raised:
        download_voc(tmp_path, url=url, md5=None, progress=False)
    assert str(raised.value) == (f"{url}: asked for bytes from 1000 on, server sent "
                                 f"'bytes 0-{len(payload) - 1}/{len(payload)}'")
    assert (tmp_path / "VOCtrainval_test.tar.part").read_bytes() == payload[:1000]
    assert not os.path.exists(tmp_path / "VOCdevkit")


def test_download_of_a_complete_part_file_just_checks_and_unpacks(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, server = serve(payload)
    log = server.log
    (tmp_path / "VOCtrainval_test.tar.part").write_bytes(payload)
    download_voc(tmp_path, url=url, md5=md5, progress=False)
    assert log == [(f"bytes={len(payload)}-", 0)]      # answered 416: nothing left to send
    assert unpacked_correctly(tmp_path)


def test_md5_mismatch_is_refused_and_nothing_is_unpacked(tmp_path, serve, voc_tar):
    payload, md5 = voc_tar
    url, _ = serve(payload)
    wrong = "0" * 32
    with pytest.raises(DataError) as caught:
        download_voc(tmp_path, url=url, md5=wrong, progress=False)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "VOCtrainval_test.tar.part") + ": ")
    assert f"MD5 {md5} does not match the expected {wrong}" in message
    assert not os.path.exists(tmp_path / "VOCdevkit")
    assert os.listdir(tmp_path) == []      # the bad file is deleted: the next run starts afresh


def test_http_error_is_one_line_naming_the_url(tmp_path, serve):
    url, _ = serve(None)
    with pytest.raises(DownloadError) as caught:
        download_voc(tmp_path, url=url, md5=None, progress=False)
    assert str(caught.value) == f"{url}: download failed: HTTP 404 Not Found"


def test_archive_without_the_voc_layout_is_reported(tmp_path, serve):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("README.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    url, _ = serve(buffer.getvalue())
    with pytest.raises(DownloadError, match="is it the VOC 2012 trainval tar"):
        download_voc(tmp_path / "root", url=url, md5=None, progress=False)


def tar_with(member, data=b"x"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../escaped.txt", "VOCdevkit/../../escaped.txt", "/tmp/escaped_fcnlite_test.txt"])
def test_extract_refuses_members_outside_the_destination(tmp_path, name):
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_with(tarfile.TarInfo(name)))
    destination = tmp_path / "root"
    with pytest.raises(DownloadError, match="would be written outside the destination"):
        extract_tar(archive, destination)
    assert not (tmp_path / "escaped.txt").exists() and not os.path.exists("/tmp/escaped_fcnlite_test.txt")
    assert os.listdir(destination) == []


def test_extract_refuses_links(tmp_path):
    link = tarfile.TarInfo("VOCdevkit/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tmp_path / "link.tar"
    archive.write_bytes(tar_with(link))
    with pytest.raises(DownloadError, match="is a link; refusing to unpack links"):
        extract_tar(archive, tmp_path / "root")


def test_an_archive_that_is_no_tar_or_is_cut_short_is_one_line(tmp_path):
    (tmp_path / "page.tar").write_text("<html>not found</html>")
    big = tarfile.TarInfo("VOCdevkit/big.bin")
    (tmp_path / "cut.tar").write_bytes(tar_with(big, b"x" * 20000)[:6000])
    for name, why in (("page.tar", "cannot be opened as a tar archive ("), ("cut.tar", "is damaged or cut short (")):
        with pytest.raises(DownloadError) as raised:
            extract_tar(tmp_path / name, tmp_path / "root")
        message = str(raised.value)
        assert message.startswith(f"{tmp_path / name}: {why}") and "\n" not in message, message
    assert os.listdir(tmp_path / "root") == []   # no .unpacking- folder left


def test_a_data_root_that_is_a_file_is_named_before_any_download(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DownloadError) as raised:
        download_voc(tmp_path / "afile", url="http://127.0.0.1:9/none.tar", md5=None, progress=False)
    assert str(raised.value) == f"{tmp_path / 'afile'}: is a file: give a folder for the VOC data"


def test_an_unpacking_killed_midway_leaves_nothing_after_the_next(tmp_path):
    destination = tmp_path / "root"
    (destination / ".unpacking-x1y2" / "VOCdevkit").mkdir(parents=True)   # as kill -9 left it, hours ago
    os.utime(destination / ".unpacking-x1y2", (0, 0))
    (destination / ".unpacking-busy").mkdir()   # another process's, being filled now: left alone
    member = tarfile.TarInfo("VOCdevkit/readme.txt")
    (tmp_path / "a.tar").write_bytes(tar_with(member, b"hello"))
    extract_tar(tmp_path / "a.tar", destination)
    assert sorted(os.listdir(destination)) == [".unpacking-busy", "VOCdevkit"]
    assert (destination / "VOCdevkit" / "readme.txt").read_bytes() == b"hello"


# ---- the programs' download: a mirror, a tar put in place, Ctrl-C ------------------------------

OFFICIAL = "VOCtrainval_11-May-2012.tar"


@pytest.fixture
def mirror(monkeypatch, serve, voc_tar):
    """The test tar served as a mirror named by FCNLITE_VOC_URL (not the tar's name, as a mirror's URL may end),
    the programs calling download_voc with its MD5: (url, server)."""
    from fcnlite.data import download
    payload, md5 = voc_tar
    url, server = serve(payload)
    url = url.replace("VOCtrainval_test.tar", "get?file=voc2012")
    monkeypatch.setenv("FCNLITE_VOC_URL", url)
    monkeypatch.setattr(download, "download_voc", functools.partial(download.download_voc, md5=md5))
    return url, server


def test_a_mirror_named_by_the_environment_is_downloaded_checked_and_kept_under_the_official_name(
        tmp_path, mirror, voc_tar):
    url, server = mirror
    download_voc(tmp_path, md5=voc_tar[1], progress=False, keep_archive=True)
    assert server.log == [(None, len(voc_tar[0]))] and unpacked_correctly(tmp_path)
    assert (tmp_path / OFFICIAL).read_bytes() == voc_tar[0]
    wrong = tmp_path / "wrong"   # a mirror's file is checked as the official one is
    with pytest.raises(DownloadError, match=f"MD5 {voc_tar[1]} does not match the expected {'0' * 32}"):
        download_voc(wrong, md5="0" * 32, progress=False)


def test_the_official_tar_put_in_the_data_root_is_checked_and_unpacked_without_a_download(
        tmp_path, serve, voc_tar, monkeypatch):
    from fcnlite.data import download
    url, server = serve(None)   # nothing to be had there: the file put in place must do
    monkeypatch.setattr(download, "VOC_URL", url)
    monkeypatch.delenv("FCNLITE_VOC_URL", raising=False)
    (tmp_path / OFFICIAL).write_bytes(voc_tar[0])
    download_voc(tmp_path, md5=voc_tar[1], progress=False)
    # the user's own file is kept (it was deleted after unpacking, as a downloaded one is)
    assert server.log == [] and unpacked_correctly(tmp_path) and (tmp_path / OFFICIAL).read_bytes() == voc_tar[0]
    # checked: a tar of other bytes put there (a truncated copy, another year's VOC) is refused, not unpacked
    other = tmp_path / "other"
    other.mkdir()
    (other / OFFICIAL).write_bytes(voc_tar[0][:-512])
    with pytest.raises(DownloadError) as raised:
        download_voc(other, md5=voc_tar[1], progress=False)
    assert str(raised.value) == (f"{other / OFFICIAL}: exists but its MD5 is not {voc_tar[1]}: "
                                 f"delete it to download it again")
    assert server.log == [] and sorted(os.listdir(other)) == [OFFICIAL]


def test_a_failed_download_says_where_else_to_get_the_tar(tmp_path, serve, monkeypatch):
    from fcnlite.data import download
    url, _ = serve(None)
    monkeypatch.setattr(download, "VOC_URL", url)
    monkeypatch.delenv("FCNLITE_VOC_URL", raising=False)
    with pytest.raises(DownloadError) as raised:
        download_voc(tmp_path, progress=False)
    assert str(raised.value) == (f"{url}: download failed: HTTP 404 Not Found: set FCNLITE_VOC_URL to a mirror's "
                                 f"URL of the same file, or put {OFFICIAL}, downloaded elsewhere, in "
                                 f"{os.path.join(tmp_path, '')} (either is checked against its MD5)")
    monkeypatch.setenv("FCNLITE_VOC_URL", url + "?mirror")
    with pytest.raises(DownloadError) as raised:
        download_voc(tmp_path, progress=False)
    assert str(raised.value).startswith(f"{url}?mirror: download failed: HTTP 404 Not Found: check FCNLITE_VOC_URL, "
                                        f"which names this mirror, or put {OFFICIAL}, downloaded elsewhere, in ")


def test_a_mirror_url_without_a_scheme_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FCNLITE_VOC_URL", "mirror.example.org/VOC.tar")   # no http://: urllib's ValueError
    with pytest.raises(DownloadError) as raised:
        download_voc(tmp_path, progress=False)
    assert str(raised.value).startswith("mirror.example.org/VOC.tar: download failed: unknown url type: ")
    assert "check FCNLITE_VOC_URL, which names this mirror" in str(raised.value)


class InterruptingBar:
    """tqdm's stand-in: Ctrl-C arrives after the first chunk is written, as a user's would mid-transfer."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, size):
        raise KeyboardInterrupt


def test_ctrl_c_during_the_download_keeps_the_part_file_says_so_and_exits_130(tmp_path, mirror, voc_tar,
                                                                              monkeypatch, capsys):
    from fcnlite import cli
    from fcnlite.data import download
    monkeypatch.setattr(download, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(download, "tqdm", InterruptingBar)
    status = cli.run_main(cli.main_train, ["--download", "--data-root", str(tmp_path / "data"), "--out",
                                           str(tmp_path / "run"), "--device", "cpu", "--no-progress"])
    part = tmp_path / "data" / f"{OFFICIAL}.part"
    assert status == 130 and part.read_bytes() == voc_tar[0][:4096]
    assert capsys.readouterr().err.splitlines()[-1] == (f"{part}: download interrupted after 0.0 MB; the partial "
                                                        f"file is kept: run the same command again to resume it")
    monkeypatch.undo()   # the same download again (the mirror served on): it asks only for the rest
    _, server = mirror
    monkeypatch.setenv("FCNLITE_VOC_URL", mirror[0])
    download_voc(tmp_path / "data", md5=voc_tar[1], progress=False)
    assert server.log[-1] == ("bytes=4096-", len(voc_tar[0]) - 4096) and unpacked_correctly(tmp_path / "data")


def test_ctrl_c_while_unpacking_keeps_the_archive_and_the_next_run_unpacks_it(tmp_path, mirror, voc_tar,
                                                                            monkeypatch):
    from fcnlite.data import download

    def interrupted(archive, destination):
        raise KeyboardInterrupt
    monkeypatch.setattr(download, "extract_tar", interrupted)
    with pytest.raises(download.DownloadInterrupted) as raised:
        download_voc(tmp_path, md5=voc_tar[1], progress=False)
    assert raised.value.signal_number == 2
    assert str(raised.value) == (f"{tmp_path / OFFICIAL}: unpacking interrupted; the downloaded file is kept: run "
                                 f"the same command again to unpack it")
    monkeypatch.setattr(download, "extract_tar", extract_tar)
    download_voc(tmp_path, md5=voc_tar[1], progress=False)
    assert len(mirror[1].log) == 1 and unpacked_correctly(tmp_path)
