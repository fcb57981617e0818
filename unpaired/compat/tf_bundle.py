"""A reader of TensorFlow checkpoints (the V2 "tensor bundle"), without TensorFlow.

A checkpoint ``PREFIX`` is ``PREFIX.index`` + ``PREFIX.data-SSSSS-of-NNNNN`` (+ a ``checkpoint`` text file in its
folder naming the newest prefix). The format (tensorflow/core/util/tensor_bundle/tensor_bundle.h):

* ``.index`` is a LevelDB-format table (an SSTable; tensorflow/core/lib/io/table_format.txt): data blocks of
  prefix-compressed ``(key, value)`` entries, an index block mapping the last key of each block to its
  ``BlockHandle`` (varint offset, varint size), and a 48-byte footer (metaindex and index handles, padding,
  the magic number ``0xdb4775248b80fb57``). Each block is followed by a compression byte and a CRC32C; TF
  writes bundles uncompressed, and a compressed block is refused.
* The entry with the empty key is a ``BundleHeaderProto`` (num_shards, endianness); every other key is a
  tensor name whose value is a ``BundleEntryProto`` (dtype, shape, shard_id, offset, size, crc32c).
* ``.data-*`` files hold the raw tensor bytes (little-endian, C order) at the entry's offset.

Only the few protobuf fields above are decoded (a minimal wire-format parser). Tensors are read lazily, one
at a time, from a memory map, so skipped variables (optimizer slots) cost nothing. The tensor bytes'
CRC32C is not verified (pure Python would take minutes for the 2.7 GB released checkpoint); their size is.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

__all__ = ["TFCheckpoint", "TFBundleError", "find_checkpoint_prefix"]

MAGIC = 0xDB4775248B80FB57
# tensorflow/core/framework/types.proto -> numpy
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}


class TFBundleError(ValueError):
    """A file that is not a readable TensorFlow V2 checkpoint."""


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise TFBundleError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """Protobuf wire format -> (field number, wire type, value: int or bytes)."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise TFBundleError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


@dataclass(frozen=True)
class Entry:
    """One ``BundleEntryProto``."""

    dtype: int
    shape: Tuple[int, ...]
    shard: int
    offset: int
    size: int
    sliced: bool


def _entry(value: bytes) -> Entry:
    dtype = shard = offset = size = 0
    shape: List[int] = []
    sliced = False
    for number, _, v in _fields(value):
        if number == 1:
            dtype = v
        elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}
            for n, _, dim in _fields(v):
                if n == 2:
                    shape.append(next((s for k, _, s in _fields(dim) if k == 1), 0))
        elif number == 3:
            shard = v
        elif number == 4:
            offset = v
        elif number == 5:
            size = v
        elif number == 7:
            sliced = True
    return Entry(int(dtype), tuple(int(s) for s in shape), int(shard), int(offset), int(size), sliced)


def _block(data: bytes, offset: int, size: int, source: str) -> bytes:
    if offset + size + 5 > len(data):
        raise TFBundleError(f"{source}: block at {offset} runs past the end of the file")
    if data[offset + size] != 0:
        raise TFBundleError(f"{source}: compressed table block (type {data[offset + size]}); TensorFlow writes "
                            f"checkpoints uncompressed, this reader reads only those")
    return data[offset:offset + size]


def _block_entries(block: bytes) -> Iterator[Tuple[bytes, bytes]]:
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * n_restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def read_index(path: Path) -> Tuple[Dict[str, object], Dict[str, Entry]]:
    """-> (header fields {num_shards, endianness}, tensor name -> Entry), in the file's (sorted) order."""
    data = Path(path).read_bytes()
    if len(data) < 48 or struct.unpack_from("<Q", data, len(data) - 8)[0] != MAGIC:
        raise TFBundleError(f"{path}: not a TensorFlow checkpoint index (no table magic number at the end)")
    footer = data[-48:]
    _, pos = _varint(footer, 0)  # metaindex handle (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    header: Dict[str, object] = {"num_shards": 1, "endianness": 0}
    entries: Dict[str, Entry] = {}
    for _, handle in _block_entries(_block(data, index_offset, index_size, str(path))):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        for key, value in _block_entries(_block(data, offset, size, str(path))):
            if key == b"":
                for number, _, v in _fields(value):
                    if number == 1:
                        header["num_shards"] = v
                    elif number == 2:
                        header["endianness"] = v
            else:
                entries[key.decode("utf-8")] = _entry(value)
    return header, entries


def find_checkpoint_prefix(path: Path) -> Path:
    """A checkpoint folder (its ``checkpoint`` file names the newest prefix), a ``.index`` / ``.data-*`` file or the
    prefix itself -> the prefix (``.../UGATIT.model-1001``)."""
    path = Path(path)
    if path.is_dir():
        state = path / "checkpoint"
        if state.exists():
            m = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', state.read_text(), re.M)
            if m:
                prefix = Path(m.group(1))
                prefix = prefix if prefix.is_absolute() and prefix.parent.exists() else path / prefix.name
                if prefix.with_name(prefix.name + ".index").exists():
                    return prefix
        found = sorted(path.glob("*.index"))
        if len(found) == 1:
            return found[0].with_suffix("")
        if not found:
            raise TFBundleError(f"{path}: no TensorFlow checkpoint here (no checkpoint file, no *.index)")
        raise TFBundleError(f"{path}: several checkpoints ({', '.join(p.name for p in found)}) and no "
                            f"'checkpoint' file naming the newest: pass the .index file of the one to read")
    if path.suffix == ".index":
        return path.with_suffix("")
    m = re.match(r"^(.*)\.data-\d+-of-\d+$", path.name)
    if m:
        return path.with_name(m.group(1))
    if path.with_name(path.name + ".index").exists():
        return path
    raise TFBundleError(f"{path}: expected a checkpoint folder, its .index file or its prefix")


class TFCheckpoint:
    """``TFCheckpoint(folder_or_index)``: ``names()``, ``shape(name)``, ``read(name) -> np.ndarray``."""

    def __init__(self, path: Path):
        self.prefix = find_checkpoint_prefix(Path(path))
        index = self.prefix.with_name(self.prefix.name + ".index")
        header, self.entries = read_index(index)
        if header["endianness"] != 0:
            raise TFBundleError(f"{index}: big-endian checkpoint; only little-endian ones are read")
        self.num_shards = int(header["num_shards"])
        self._maps: Dict[int, np.memmap] = {}

    def names(self) -> List[str]:
        return list(self.entries)

    def shape(self, name: str) -> Tuple[int, ...]:
        return self.entries[name].shape

    def shard_path(self, shard: int) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}.data-{shard:05d}-of-{self.num_shards:05d}")

    def read(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        if entry.sliced:
            raise TFBundleError(f"{self.prefix}: {name!r} is saved in slices (partitioned variable); not supported")
        if entry.dtype not in DTYPES:
            raise TFBundleError(f"{self.prefix}: {name!r} has TensorFlow dtype {entry.dtype}, not a numeric one "
                                f"this reader knows")
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder("<")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise TFBundleError(f"{self.prefix}: {name!r}: {entry.size} bytes stored for shape {entry.shape} "
                                f"of {dtype} ({count * dtype.itemsize} expected)")
        if entry.shard not in self._maps:
            shard = self.shard_path(entry.shard)
            if not shard.exists():
                raise TFBundleError(f"{shard}: missing (the checkpoint's data file)")
            self._maps[entry.shard] = np.memmap(shard, dtype=np.uint8, mode="r")
        raw = self._maps[entry.shard]
        if entry.offset + entry.size > raw.shape[0]:
            raise TFBundleError(f"{self.shard_path(entry.shard)}: {name!r} runs past the end of the file "
                                f"(truncated download?)")
        flat = np.frombuffer(raw, dtype=dtype, count=count, offset=entry.offset)
        return flat.reshape(entry.shape).astype(dtype.newbyteorder("="), copy=True)
