"""``unpaired data download NAME DIR``: the standard unpaired datasets by name, through pooch.

The archive goes to ``DIR/.download/NAME.zip`` through a resumable downloader (``NAME.zip.part`` grows with
HTTP range requests: an interrupted download continues where it stopped), then pooch checks its sha256
(where this table knows it, or ``--sha256`` gives it) and refuses a mismatch. The sha256 is printed and
recorded in ``DIR/SOURCE.json`` with the URL, the source and the licence. The archive is unpacked into a
temporary folder inside DIR and its ``trainA/ trainB/ testA/ testB/`` are then moved into DIR (the layout
``unpaired train`` reads): a failure leaves no half-unpacked folder behind.

The URL base (the CycleGAN authors' server, as ``datasets/download_cyclegan_dataset.sh`` uses it) can be
replaced with the environment variable ``UNPAIRED_DATA_URL`` (a mirror; the tests' local server).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

__all__ = ["DATASETS", "DownloadError", "download_dataset", "dataset_url", "BASE_URL", "BASE_URL_ENV"]

BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
BASE_URL_ENV = "UNPAIRED_DATA_URL"
SPLITS = ("trainA", "trainB", "testA", "testB")
_CYCLEGAN = "collected by Zhu et al. for CycleGAN (ICCV 2017, junyanz/pytorch-CycleGAN-and-pix2pix)"
_TERMS = "no licence stated by the CycleGAN authors; the images keep the terms of their original source"


@dataclass(frozen=True)
class Dataset:
    domains: str  # what A and B are
    source: str  # where the images come from
    licence: str
    sha256: Optional[str] = None  # of NAME.zip, where known (verified downloads only; never guessed)


DATASETS: Dict[str, Dataset] = {
    "horse2zebra": Dataset("A: horses, B: zebras", f"ImageNet; {_CYCLEGAN}", f"{_TERMS} (ImageNet terms of access: "
                           "non-commercial research and education)"),
    "apple2orange": Dataset("A: apples, B: oranges", f"ImageNet; {_CYCLEGAN}", f"{_TERMS} (ImageNet terms of "
                            "access: non-commercial research and education)"),
    "summer2winter_yosemite": Dataset("A: Yosemite in summer, B: in winter", f"Flickr; {_CYCLEGAN}",
                                      f"{_TERMS} (Flickr: each photo's own licence)"),
    "monet2photo": Dataset("A: Monet paintings, B: landscape photos", f"WikiArt and Flickr; {_CYCLEGAN}",
                           f"{_TERMS} (WikiArt, Flickr)"),
    "cezanne2photo": Dataset("A: Cezanne paintings, B: landscape photos", f"WikiArt and Flickr; {_CYCLEGAN}",
                             f"{_TERMS} (WikiArt, Flickr)"),
    "ukiyoe2photo": Dataset("A: Ukiyo-e prints, B: landscape photos", f"WikiArt and Flickr; {_CYCLEGAN}",
                            f"{_TERMS} (WikiArt, Flickr)"),
    "vangogh2photo": Dataset("A: Van Gogh paintings, B: landscape photos", f"WikiArt and Flickr; {_CYCLEGAN}",
                             f"{_TERMS} (WikiArt, Flickr)"),
    "maps": Dataset("A: satellite photos, B: Google Maps tiles", f"Google Maps (New York City); {_CYCLEGAN}",
                    f"{_TERMS} (Google Maps terms of service)"),
    "facades": Dataset("A: facade photos, B: label maps", f"CMP Facade Database (Tylecek and Sara, 2013); "
                       f"{_CYCLEGAN}", f"{_TERMS} (CMP Facade Database)"),
    "iphone2dslr_flower": Dataset("A: iPhone flower photos, B: DSLR flower photos", f"Flickr; {_CYCLEGAN}",
                                  f"{_TERMS} (Flickr: each photo's own licence)"),
}
# selfie2anime (U-GAT-IT) is left out: it is published only as a Google Drive file, not at a stable URL.


class DownloadError(RuntimeError):
    """A dataset that cannot be downloaded or unpacked as asked; the message says why."""


def dataset_url(name: str) -> str:
    base = os.environ.get(BASE_URL_ENV) or BASE_URL
    return f"{base.rstrip('/')}/{name}.zip"


class ResumableDownloader:
    """A pooch downloader (``downloader(url, output_file, pooch)``) that keeps the bytes received in ``partial``
    across runs and asks the server only for the rest (HTTP Range); when complete, ``partial`` becomes
    ``output_file`` (pooch's temporary file, which it then checks and renames)."""

    def __init__(self, partial: Path, timeout: float = 60.0, chunk: int = 1 << 16, progress: bool = True):
        self.partial, self.timeout, self.chunk, self.progress = Path(partial), timeout, chunk, progress

    def __call__(self, url: str, output_file, pooch, check_only: bool = False):
        import requests

        if check_only:
            return requests.head(url, timeout=self.timeout, allow_redirects=True).ok
        have = self.partial.stat().st_size if self.partial.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416 and have:  # nothing left to send: complete, or longer than the file
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                if total != str(have):
                    self.partial.unlink()
                    return self(url, output_file, pooch)
            else:
                response.raise_for_status()
                resumed = response.status_code == 206
                if have and not resumed:
                    print(f"{url}: the server does not resume downloads; starting again")
                elif resumed:
                    print(f"resuming {url} at {have / 1e6:.1f} MB")
                total = int(response.headers.get("Content-Length") or 0) + (have if resumed else 0)
                with open(self.partial, "ab" if resumed else "wb") as f:
                    for block in self._progress(response.iter_content(self.chunk), have if resumed else 0, total):
                        f.write(block)
        os.replace(self.partial, output_file)

    def _progress(self, blocks, start: int, total: int):
        if not self.progress:
            yield from blocks
            return
        from tqdm import tqdm

        with tqdm(total=total or None, initial=start, unit="B", unit_scale=True, desc="download") as bar:
            for block in blocks:
                bar.update(len(block))
                yield block


def _unpack(archive: Path, out: Path) -> list:
    """Extract into a temporary folder inside ``out``, then move the split folders into ``out``."""
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=out))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(staging)  # zipfile drops absolute paths and '..' components
        except zipfile.BadZipFile as e:
            raise DownloadError(f"{archive}: not a readable zip archive ({e})") from None
        roots = [p.parent for p in staging.rglob("trainA") if p.is_dir()]
        if not roots:
            raise DownloadError(f"{archive}: no trainA/ folder inside; not an unpaired dataset archive")
        root = min(roots, key=lambda p: len(p.parts))
        moved = [s for s in SPLITS if (root / s).is_dir()]
        if "trainB" not in moved:
            raise DownloadError(f"{archive}: trainA/ without trainB/")
        for split in moved:
            os.replace(root / split, out / split)
        return moved
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_dataset(name: str, out: Path, sha256: Optional[str] = None, keep_archive: bool = False,
                     progress: bool = True) -> Path:
    """Download dataset ``name`` into ``out`` (``out/trainA`` …); returns ``out/SOURCE.json``."""
    import pooch

    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    entry, out = DATASETS[name], Path(out)
    taken = [s for s in SPLITS if (out / s).exists()]
    if taken:
        raise DownloadError(f"{out} already holds {', '.join(taken)}; download into a new folder")
    known = (sha256 or entry.sha256 or "").lower() or None
    url = dataset_url(name)
    print(f"{name} ({entry.domains})\n  from    {url}\n  source  {entry.source}\n  licence {entry.licence}")
    cache = out / ".download"
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{name}.zip"
    downloader = ResumableDownloader(cache / f"{name}.zip.part", progress=progress)
    try:
        pooch.retrieve(url, known_hash=f"sha256:{known}" if known else None, fname=archive.name, path=cache,
                       downloader=downloader, progressbar=False)
    except ValueError as e:  # pooch: hash mismatch (its temporary file is removed; nothing is unpacked)
        raise DownloadError(f"{url}: {e}") from None
    except OSError as e:
        raise DownloadError(f"{url}: download failed ({type(e).__name__}: {e}); run the same command again to "
                            f"resume") from None
    digest = pooch.file_hash(str(archive), alg="sha256")
    print(f"  sha256  {digest} ({'checked' if known else 'not known before: recorded, not checked'})")
    splits = _unpack(archive, out)
    record = {"name": name, "url": url, "sha256": digest, "sha256_checked": bool(known), "source": entry.source,
              "licence": entry.licence, "domains": entry.domains, "splits": splits,
              "downloaded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = out / "SOURCE.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    if not keep_archive:
        archive.unlink()
        shutil.rmtree(cache, ignore_errors=True)
    print(f"unpacked {', '.join(splits)} into {out} (provenance: {path})")
    return path
