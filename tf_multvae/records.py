"""tf.train.Example records and TFRecord files without importing TensorFlow.

The data_prep workers write millions of users; encoding the Example
protobuf here (wire format of tensorflow/core/example/example.proto) with
numpy is several times faster than building ``tf.train.Example`` objects,
and keeps TensorFlow's start-up out of every Beam worker. The tests parse
what this writes with TensorFlow's own parser.
"""

from __future__ import annotations

import struct
from typing import BinaryIO
from typing import Iterable
from typing import Iterator
from typing import Sequence

import numpy as np

from tf_multvae import features

_MASK_DELTA = 0xA282EAD8


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [_encode_varint(n) for n in range(1 << 14)]


def _varint(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < 16384 else _encode_varint(n)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: (number << 3 | 2), length, payload."""
    return _TAGS[tag] + _varint(len(payload)) + payload


_TAGS = {tag: bytes((tag,)) for tag in (0x0A, 0x12, 0x1A)}


def packed_varints(
    values: np.ndarray, offsets: np.ndarray
) -> tuple[bytes, np.ndarray]:
    """Varint-encodes many int lists at once.

    Args:
        values: int ``[n]``, all lists concatenated; must be >= 0.
        offsets: int ``[k + 1]``, list ``j`` is ``values[offsets[j]:
            offsets[j + 1]]``.

    Returns:
        (buffer, bounds): list ``j`` encodes to ``buffer[bounds[j]:
        bounds[j + 1]]``.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size and v.min() < 0:
        raise ValueError("item indices must be >= 0")
    v = v.astype(np.uint64)
    width = max(1, (int(v.max()).bit_length() + 6) // 7) if v.size else 1
    shifts = np.arange(width, dtype=np.uint64) * np.uint64(7)
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)  # [n, width]
    n_bytes = np.ones(v.size, np.int64)
    for k in range(1, width):
        n_bytes += v >= np.uint64(1 << (7 * k))
    k = np.arange(width)
    more = k[None, :] < (n_bytes[:, None] - 1)  # continuation bit
    used = k[None, :] < n_bytes[:, None]
    data = (groups | (more.astype(np.uint64) << np.uint64(7)))[used]
    bounds = np.concatenate([[0], np.cumsum(n_bytes)])[np.asarray(offsets)]
    return data.astype(np.uint8).tobytes(), bounds


def _int64_feature(packed: bytes) -> bytes:
    # Feature{int64_list (3): Int64List{value (1), packed}}
    return _field(0x1A, _field(0x0A, packed) if packed else b"")


def _bytes_feature(value: bytes) -> bytes:
    # Feature{bytes_list (1): BytesList{value (1)}}
    return _field(0x0A, _field(0x0A, value))


def _entry(key: bytes, feature: bytes) -> bytes:
    # Features.feature map entry: key (1), value (2); key is pre-encoded.
    return _field(0x0A, key + _field(0x12, feature))


_KEYS = {
    key: _field(0x0A, key.encode())
    for key in (features.USER_ID, *features.ITEM_KEYS)
}


def encode_examples(
    user_ids: Sequence[str],
    lists: dict[str, tuple[np.ndarray, np.ndarray]],
) -> Iterator[bytes]:
    """Serialized ``tf.train.Example`` per user, all item keys present.

    Args:
        user_ids: the raw user ids, one per record.
        lists: for some of ``features.ITEM_KEYS``, (values, offsets) as in
            :func:`packed_varints`, ``len(user_ids) + 1`` offsets; the other
            keys are written as empty lists.

    Yields:
        One serialized example per user, in order.
    """
    encoded = {key: packed_varints(*lists[key]) for key in lists}
    empty = _int64_feature(b"")
    for j, user in enumerate(user_ids):
        body = _entry(_KEYS[features.USER_ID], _bytes_feature(user.encode()))
        for key in features.ITEM_KEYS:
            if key in encoded:
                buf, bounds = encoded[key]
                feature = _int64_feature(buf[bounds[j] : bounds[j + 1]])
            else:
                feature = empty
            body += _entry(_KEYS[key], feature)
        yield _field(0x0A, body)  # Example{features (1)}


def _packed_one(values: Sequence[int]) -> bytes:
    out = []
    for v in values:
        v = int(v)
        if v < 0:
            raise ValueError("item indices must be >= 0")
        out.append(_varint(v))
    return b"".join(out)


def make_example(
    user_id: str,
    items: Sequence[int] = (),
    fold_in: Sequence[int] = (),
    heldout: Sequence[int] = (),
    candidates: Sequence[int] = (),
) -> bytes:
    """One user's serialized example (the layout of encode_examples).

    Plain Python: for one short list numpy's per-call overhead dominates.
    """
    lists = {
        features.ITEMS: items,
        features.FOLD_IN: fold_in,
        features.HELDOUT: heldout,
        features.CANDIDATES: candidates,
    }
    body = _entry(_KEYS[features.USER_ID], _bytes_feature(user_id.encode()))
    for key in features.ITEM_KEYS:
        body += _entry(_KEYS[key], _int64_feature(_packed_one(lists[key])))
    return _field(0x0A, body)


def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def write_tfrecord(f: BinaryIO, records: Iterable[bytes]) -> int:
    """Writes records to an open binary file in TFRecord framing.

    Each record: uint64 length, masked crc32c of the length, the data,
    masked crc32c of the data (little-endian), as tf.io.TFRecordWriter.

    Returns:
        The number of records written.
    """
    n = 0
    for record in records:
        length = struct.pack("<Q", len(record))
        f.write(length + struct.pack("<I", _masked_crc(length)))
        f.write(record + struct.pack("<I", _masked_crc(record)))
        n += 1
    return n


def count_tfrecords(f: BinaryIO) -> int:
    """Counts the records of an open TFRecord file from its length fields."""
    n = 0
    while True:
        header = f.read(12)
        if not header:
            return n
        if len(header) < 12:
            raise ValueError("truncated TFRecord header")
        (length,) = struct.unpack("<Q", header[:8])
        skipped = f.seek(length + 4, 1) if f.seekable() else None
        if skipped is None:
            f.read(length + 4)
        n += 1
