"""Read a TensorFlow (V2 bundle) checkpoint with numpy alone.

A checkpoint ``PREFIX`` is two files: ``PREFIX.index``, a LevelDB-style sorted table that maps
each variable name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size, crc32c), and
``PREFIX.data-00000-of-00001``, the raw little-endian tensor bytes. Both formats are small and
stable, so they are parsed here directly: no TensorFlow, no protobuf code generation. Every
tensor's crc32c is checked, so a damaged file raises :class:`WeightsError` instead of
producing wrong numbers.

The musicnn checkpoints use an empty prefix (the files are ``.index`` and
``.data-00000-of-00001`` inside the model folder): pass the folder (see :func:`checkpoint_files`).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np

from ..errors import WeightsError

__all__ = ["read_tf_checkpoint", "checkpoint_files", "crc32c", "is_optimizer_slot"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_LEN = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
_BLOCK_TRAILER_LEN = 5  # 1 byte compression type + 4 bytes masked crc32c

# tensorflow/core/framework/types.proto -> numpy (little-endian)
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}

# Optimizer state saved beside the model variables (Adam slots, its beta powers, the step).
_SLOT_RE = re.compile(r"(/(Adam|Adam_\d+|Momentum|RMSProp|RMSProp_\d+|Adagrad)$)|(^beta[12]_power(_\d+)?$)|(^global_step$)")


def is_optimizer_slot(name: str) -> bool:
    """True for optimizer state (``.../Adam``, ``.../Adam_1``, ``beta1_power``, ``global_step``)."""
    return bool(_SLOT_RE.search(name))


# --- crc32c (Castagnoli), vectorised with numpy ----------------------------------------------
def _make_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table[i] = c
    return table


_CRC_TABLE = _make_table()
_CRC_TABLE_PY = [int(v) for v in _CRC_TABLE]
_CHUNK = 1024
_SHIFT_COLUMNS: list[int] | None = None  # register after _CHUNK zero bytes, for each basis bit


def _crc_update_py(reg: int, data: bytes) -> int:
    table = _CRC_TABLE_PY
    for b in data:
        reg = table[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _shift_columns() -> list[int]:
    global _SHIFT_COLUMNS
    if _SHIFT_COLUMNS is None:
        regs = np.array([1 << i for i in range(32)], dtype=np.uint32)
        for _ in range(_CHUNK):
            regs = _CRC_TABLE[regs & 0xFF] ^ (regs >> 8)
        _SHIFT_COLUMNS = [int(v) for v in regs]
    return _SHIFT_COLUMNS


def crc32c(data: bytes | memoryview) -> int:
    """CRC-32C of `data` (the checksum TensorFlow stores, before masking).

    The register update is linear over GF(2), so equal-sized chunks are processed side by side
    with numpy (register of each chunk from zero) and chained with the linear map "advance over
    ``_CHUNK`` zero bytes"; the remainder is done byte by byte.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    n_chunks = buf.size // _CHUNK
    reg = 0xFFFFFFFF
    if n_chunks >= 4:
        blocks = buf[: n_chunks * _CHUNK].reshape(n_chunks, _CHUNK)
        regs = np.zeros(n_chunks, dtype=np.uint32)
        for j in range(_CHUNK):
            regs = _CRC_TABLE[(regs ^ blocks[:, j]) & 0xFF] ^ (regs >> 8)
        cols = _shift_columns()
        for part in regs.tolist():
            shifted = 0
            bit = 0
            r = reg
            while r:
                if r & 1:
                    shifted ^= cols[bit]
                r >>= 1
                bit += 1
            reg = shifted ^ part
        tail = buf[n_chunks * _CHUNK :].tobytes()
    else:
        tail = buf.tobytes()
    reg = _crc_update_py(reg, tail)
    return reg ^ 0xFFFFFFFF


def _unmask(masked: int) -> int:
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- protobuf / table primitives -------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _proto_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized protobuf message."""
    fields = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            if len(value) != length:
                raise ValueError("truncated length-delimited field")
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.append((field, wire, value))
    return fields


def _read_block(index: bytes, offset: int, size: int) -> bytes:
    end = offset + size
    if end + _BLOCK_TRAILER_LEN > len(index):
        raise ValueError("block handle points past the end of the file")
    block = index[offset:end]
    compression = index[end]
    if compression != 0:
        raise ValueError(f"compressed table blocks (type {compression}) are not supported")
    (stored,) = struct.unpack_from("<I", index, end + 1)
    # The block crc covers the block contents and the compression byte.
    if crc32c(index[offset : end + 1]) != _unmask(stored):
        raise ValueError(f"checksum mismatch in the table block at offset {offset}")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one table block (prefix-compressed keys, restart array at the end)."""
    if len(block) < 4:
        raise ValueError("table block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise ValueError("bad restart count in a table block")
    entries = []
    pos = 0
    key = b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise ValueError("corrupt entry in a table block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _table_entries(index: bytes) -> list[tuple[bytes, bytes]]:
    if len(index) < _FOOTER_LEN:
        raise ValueError("file too short for a table footer")
    footer = index[-_FOOTER_LEN:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_LEN - 8)
    if magic != _TABLE_MAGIC:
        raise ValueError("bad table magic number (not a TensorFlow checkpoint index)")
    _meta_off, pos = _varint(footer, 0)
    _meta_size, pos = _varint(footer, pos)
    idx_off, pos = _varint(footer, pos)
    idx_size, pos = _varint(footer, pos)
    entries: list[tuple[bytes, bytes]] = []
    for _last_key, handle in _block_entries(_read_block(index, idx_off, idx_size)):
        off, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        entries.extend(_block_entries(_read_block(index, off, size)))
    return entries


def _parse_entry(value: bytes) -> dict:
    entry: dict = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "slices": 0}
    for field, _wire, v in _proto_fields(value):
        if field == 1:
            entry["dtype"] = v
        elif field == 2:
            for f2, _w2, dim in _proto_fields(v):  # TensorShapeProto
                if f2 == 2:
                    size = 0
                    for f3, _w3, dv in _proto_fields(dim):  # Dim{size=1, name=2}
                        if f3 == 1:
                            size = dv if dv < 1 << 63 else dv - (1 << 64)
                    entry["shape"].append(size)
                elif f2 == 3 and v:
                    raise ValueError("tensor of unknown rank")
        elif field == 3:
            entry["shard_id"] = v
        elif field == 4:
            entry["offset"] = v
        elif field == 5:
            entry["size"] = v
        elif field == 6:
            entry["crc32c"] = v
        elif field == 7:
            entry["slices"] += 1
    return entry


# --- public ----------------------------------------------------------------------------------
def checkpoint_files(path: str | Path) -> tuple[Path, Path]:
    """``(index_path, data_path)`` of the single-shard checkpoint at `path`.

    `path` is the prefix itself (``model.ckpt`` for ``model.ckpt.index``), the ``.index`` file,
    or a folder holding one checkpoint (musicnn's folders hold ``.index`` and
    ``.data-00000-of-00001``: an empty prefix).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / ".index").is_file():
            prefix = str(p / "_")[:-1]  # "folder/": the empty prefix inside the folder
        else:
            found = sorted(f for f in p.glob("*.index") if f.name != ".index")
            if not found:
                raise WeightsError(
                    f"No TensorFlow checkpoint (.index file) in folder {str(p)!r}; point weights= at "
                    "a folder holding one, or install the musicnn weights with "
                    "pip install --no-deps musicnn==0.1.0."
                )
            if len(found) > 1:
                names = [f.name for f in found]
                raise WeightsError(f"Folder {str(p)!r} holds several checkpoints ({names}); name one prefix.")
            prefix = str(found[0])[: -len(".index")]
    elif p.name.endswith(".index"):
        prefix = str(p)[: -len(".index")]
    else:
        prefix = str(p)
    return Path(prefix + ".index"), Path(prefix + ".data-00000-of-00001")


def read_tf_checkpoint(
    path: str | Path,
    *,
    skip_optimizer: bool = True,
    verify: bool = True,
) -> dict[str, np.ndarray]:
    """Load every variable of a TensorFlow V2 checkpoint as numpy arrays.

    Parameters
    ----------
    path : str or Path
        Checkpoint prefix, ``.index`` file, or folder holding one checkpoint
        (:func:`checkpoint_files`).
    skip_optimizer : bool
        Leave out optimizer state (Adam slots, ``beta1_power``, ``global_step``), keeping the
        model variables only.
    verify : bool
        Check each tensor's crc32c against the index.

    Returns
    -------
    dict of str -> np.ndarray
        Variable name (``"conv2d/kernel"``) to a writable array of the stored dtype and shape
        (TensorFlow layouts: conv kernels are ``(h, w, in, out)``, dense ``(in, out)``).

    Raises
    ------
    WeightsError
        A file is missing, truncated, or fails a checksum; or the checkpoint uses sharding,
        partitioned variables or a dtype this reader does not know.

    Examples
    --------
    >>> from soundalike.backends.musicnn import find_musicnn_checkpoint
    >>> folder = find_musicnn_checkpoint("MSD_musicnn")  # needs pip install --no-deps musicnn==0.1.0
    >>> variables = read_tf_checkpoint(folder)  # doctest: +SKIP
    >>> variables["conv2d/kernel"].shape  # doctest: +SKIP
    (7, 38, 1, 204)
    """
    index_path, data_path = checkpoint_files(path)
    for f in (index_path, data_path):
        if not f.is_file():
            raise WeightsError(
                f"TensorFlow checkpoint file {str(f)!r} is missing; reinstall the weights "
                "(pip install --force-reinstall --no-deps musicnn==0.1.0) or point weights= at a "
                "complete checkpoint."
            )
    index = index_path.read_bytes()
    try:
        entries = _table_entries(index)
    except (ValueError, struct.error) as exc:
        raise WeightsError(f"Checkpoint index {str(index_path)!r} is damaged: {exc}.") from None

    data = data_path.read_bytes()
    out: dict[str, np.ndarray] = {}
    for key, value in entries:
        if key == b"":  # BundleHeaderProto: num_shards=1, endianness=2 (0 = little), version=3
            header = {f: v for f, _w, v in _proto_fields(value)}
            if header.get(1, 1) != 1:
                raise WeightsError(f"Checkpoint {str(index_path)!r} is sharded ({header[1]} shards); only single-shard checkpoints are supported.")
            if header.get(2, 0) != 0:
                raise WeightsError(f"Checkpoint {str(index_path)!r} is big-endian; only little-endian checkpoints are supported.")
            continue
        name = key.decode("utf-8", errors="replace")
        if skip_optimizer and is_optimizer_slot(name):
            continue
        try:
            entry = _parse_entry(value)
        except (ValueError, struct.error) as exc:
            raise WeightsError(f"Checkpoint entry {name!r} in {str(index_path)!r} is damaged: {exc}.") from None
        if entry["slices"] or entry["shard_id"] != 0:
            raise WeightsError(f"Variable {name!r} is partitioned or sharded; not supported by this reader.")
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise WeightsError(f"Variable {name!r} has TensorFlow dtype enum {entry['dtype']}, which this reader does not support.")
        start, size = entry["offset"], entry["size"]
        shape = tuple(entry["shape"])
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size != expected or start + size > len(data):
            raise WeightsError(
                f"Variable {name!r} of shape {shape} needs {expected} bytes at offset {start}, but the "
                f"index says {size} and {str(data_path)!r} has {len(data)}; the checkpoint is damaged."
            )
        raw = memoryview(data)[start : start + size]
        if verify and entry["crc32c"] is not None and crc32c(raw) != _unmask(entry["crc32c"]):
            raise WeightsError(
                f"Variable {name!r} fails its crc32c check in {str(data_path)!r}; the file is damaged — "
                "reinstall the weights (pip install --force-reinstall --no-deps musicnn==0.1.0)."
            )
        out[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if not out:
        raise WeightsError(f"Checkpoint {str(index_path)!r} holds no model variables.")
    return out
