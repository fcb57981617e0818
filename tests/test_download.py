"""`unpaired data download` end to end against a local HTTP server (127.0.0.1, archives made here; no network):
a good archive, a wrong checksum, an interrupted download resumed, an unknown name."""

import hashlib
import http.server
import io
import json
import random
import threading
import zipfile

import pytest

from conftest import unpaired

pytest.importorskip("pooch", reason="the [download] extra (pooch) is not installed")

from unpaired.data.download import BASE_URL_ENV, DownloadError, download_dataset  # noqa: E402


def make_zip(name: str) -> bytes:
    buffer, rng = io.BytesIO(), random.Random(name)
    with zipfile.ZipFile(buffer, "w") as z:
        for split in ("trainA", "trainB", "testA", "testB"):
            for i in range(2):  # 64 kB each, incompressible: the archive is ~0.5 MB
                z.writestr(f"{name}/{split}/{i}.txt", f"{split} {i} ".encode() + rng.randbytes(1 << 16))
    return buffer.getvalue()


@pytest.fixture
def server(monkeypatch):
    """Serves ``files`` (name -> bytes) with HTTP Range support; ``cut`` names files whose next response stops
    halfway; ``ranges`` records the Range headers received."""
    state = {"files": {}, "cut": set(), "ranges": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            data = state["files"].get(self.path.rsplit("/", 1)[-1])
            if data is None:
                self.send_error(404)
                return
            start = 0
            if self.headers.get("Range"):
                state["ranges"].append(self.headers["Range"])
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            name = self.path.rsplit("/", 1)[-1]
            if name in state["cut"]:
                state["cut"].discard(name)
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/datasets")
    yield state
    httpd.shutdown()
    httpd.server_close()


def splits(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_good_archive_through_the_cli(server, tmp_path):
    archive = make_zip("horse2zebra")
    server["files"]["horse2zebra.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    out = tmp_path / "h2z"
    proc = unpaired("data", "download", "horse2zebra", out)
    assert digest in proc.stdout and "licence" in proc.stdout and "ImageNet" in proc.stdout
    assert splits(out) == ["SOURCE.json", "testA", "testB", "trainA", "trainB"]
    assert (out / "trainA" / "1.txt").read_bytes().startswith(b"trainA 1")
    record = json.loads((out / "SOURCE.json").read_text())
    assert record["sha256"] == digest and record["sha256_checked"] is False and record["url"].endswith("horse2zebra.zip")
    again = tmp_path / "checked"
    download_dataset("horse2zebra", again, sha256=digest, progress=False)
    assert json.loads((again / "SOURCE.json").read_text())["sha256_checked"] is True


def test_wrong_checksum_is_refused_and_nothing_is_unpacked(server, tmp_path):
    server["files"]["apple2orange.zip"] = make_zip("apple2orange")
    out = tmp_path / "a2o"
    proc = unpaired("data", "download", "apple2orange", out, "--sha256", "0" * 64, ok=False)
    assert proc.returncode == 2 and "hash" in proc.stderr.lower()
    leftovers = [p for p in out.rglob("*") if p.is_file() or p.name.startswith(".unpack")]
    assert leftovers == [] and not (out / "trainA").exists()


def test_interrupted_download_resumes(server, tmp_path):
    archive = make_zip("maps")
    server["files"]["maps.zip"] = archive
    server["cut"].add("maps.zip")
    out = tmp_path / "maps"
    with pytest.raises(DownloadError, match="resume"):
        download_dataset("maps", out, progress=False)
    have = (out / ".download" / "maps.zip.part").stat().st_size
    assert 0 < have < len(archive) and not (out / "trainA").exists()
    download_dataset("maps", out, sha256=hashlib.sha256(archive).hexdigest(), progress=False)
    assert server["ranges"] == [f"bytes={have}-"]  # only the rest was asked for
    assert splits(out) == ["SOURCE.json", "testA", "testB", "trainA", "trainB"] and not (out / ".download").exists()


def test_unknown_name_lists_the_known_ones(tmp_path):
    proc = unpaired("data", "download", "horse2unicorn", tmp_path / "x", ok=False)
    assert proc.returncode == 2 and "unknown dataset 'horse2unicorn'" in proc.stderr
    for name in ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "maps", "facades",
                 "cezanne2photo"):
        assert name in proc.stderr
