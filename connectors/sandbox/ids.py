"""CRM-style record ids minted from row positions, and decoded back to positions.

Salesforce ids are 18 characters: a 3-character key prefix (``00Q`` for Lead),
a 2-character pod id, one reserved character, a 9-character base-62 serial and
a 3-character case-safe checksum. The serial is the row position plus one, in
an alphabet ordered like ASCII, so sorting ids as strings sorts them by row
position. That lets the id index be arithmetic instead of a hash map.

HubSpot ids are decimal integers; each object type gets its own base so ids of
different types never collide (HubSpot does not promise that, but it makes
mix-ups visible in tests).
"""

from __future__ import annotations

import secrets

import numpy as np

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_BYTES = np.frombuffer(BASE62.encode(), dtype=np.uint8)
_BASE62_INDEX = {c: i for i, c in enumerate(BASE62)}
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_CHECKSUM_BYTES = np.frombuffer(_CHECKSUM.encode(), dtype=np.uint8)
_POD = "8d0"  # pod "8d" + reserved "0"
SERIAL_WIDTH = 9

SF_KEY_PREFIXES: dict[str, str] = {
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Task": "00T",
    "Event": "00U",
    "Opportunity": "006",
    "User": "005",
    "Group": "00G",
    "QueueSobject": "03g",
    "LeadHistory": "017",
    "Organization": "00D",
    "CustomField": "00N",
    "PermissionSet": "0PS",
    "FieldPermissions": "01k",
    "PermissionSetAssignment": "0Pa",
}
BULK_JOB_PREFIX = "750"


def checksum_suffix(id15: str) -> str:
    """Return the 3-character case-safe suffix Salesforce appends to a 15-char id."""
    out = []
    for chunk in range(3):
        flags = 0
        for bit, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << bit
        out.append(_CHECKSUM[flags])
    return "".join(out)


def to_18(sf_id: str) -> str:
    """Return the 18-character form of a 15- or 18-character Salesforce id."""
    if len(sf_id) == 15:
        return sf_id + checksum_suffix(sf_id)
    return sf_id


def mint_sf_id(prefix: str, serial: int) -> str:
    """Return one 18-character Salesforce id for ``serial`` (>= 1)."""
    digits = []
    n = serial
    for _ in range(SERIAL_WIDTH):
        n, r = divmod(n, 62)
        digits.append(BASE62[r])
    id15 = prefix + _POD + "".join(reversed(digits))
    return id15 + checksum_suffix(id15)


def mint_sf_ids(prefix: str, start: int, count: int) -> np.ndarray:
    """Mint ``count`` Salesforce ids with serials ``start + 1 .. start + count``.

    Args:
        prefix: the 3-character key prefix.
        start: serial offset (row position of the first id).
        count: number of ids.

    Returns:
        A numpy object array of Python ``str`` ids.
    """
    if count == 0:
        return np.empty(0, dtype=object)
    serial = np.arange(start + 1, start + count + 1, dtype=np.int64)
    buf = np.empty((count, 18), dtype=np.uint8)
    head = np.frombuffer((prefix + _POD).encode(), dtype=np.uint8)
    buf[:, :6] = head
    for k in range(SERIAL_WIDTH - 1, -1, -1):
        buf[:, 6 + k] = _BASE62_BYTES[serial % 62]
        serial //= 62
    upper = (buf[:, :15] >= ord("A")) & (buf[:, :15] <= ord("Z"))
    weights = np.array([1, 2, 4, 8, 16], dtype=np.int64)
    flags = upper.reshape(count, 3, 5).astype(np.int64) @ weights
    buf[:, 15:] = _CHECKSUM_BYTES[flags]
    return buf.view("S18").ravel().astype("U18").astype(object)


def decode_sf_serial(sf_id: str, prefix: str) -> int | None:
    """Return the serial encoded in ``sf_id`` if it is well-formed for ``prefix``."""
    if not isinstance(sf_id, str) or len(sf_id) not in (15, 18) or not sf_id.startswith(prefix):
        return None
    if sf_id[3:6] != _POD:
        return None
    n = 0
    for char in sf_id[6:15]:
        digit = _BASE62_INDEX.get(char)
        if digit is None:
            return None
        n = n * 62 + digit
    if len(sf_id) == 18 and sf_id[15:] != checksum_suffix(sf_id[:15]):
        return None
    return n


_DIGIT_OF_BYTE = np.full(256, -1, dtype=np.int64)
_DIGIT_OF_BYTE[_BASE62_BYTES] = np.arange(62)
_FLAG_WEIGHTS = np.array([1, 2, 4, 8, 16], dtype=np.int64)


def decode_sf_serials(ids: np.ndarray, prefix: str) -> np.ndarray:
    """Vectorised `decode_sf_serial`: serials of well-formed ``prefix`` ids, -1 elsewhere.

    Args:
        ids: an object array of candidate ids (anything; non-strings decode to -1).
        prefix: the 3-character key prefix the ids must carry.
    """
    n = len(ids)
    out = np.full(n, -1, dtype=np.int64)
    candidates = [
        i
        for i, v in enumerate(ids.tolist())
        if isinstance(v, str) and len(v) in (15, 18) and v.isascii()
    ]
    if not candidates:
        return out
    idx = np.asarray(candidates, dtype=np.int64)
    texts = [ids[i] for i in candidates]
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    buf = np.array(texts, dtype="S18").view(np.uint8).reshape(len(texts), 18)
    head = np.frombuffer((prefix + _POD).encode(), dtype=np.uint8)
    ok = np.all(buf[:, :6] == head, axis=1)
    digits = _DIGIT_OF_BYTE[buf[:, 6:15]]
    ok &= np.all(digits >= 0, axis=1)
    serial = np.zeros(len(texts), dtype=np.int64)
    for k in range(SERIAL_WIDTH):
        serial = serial * 62 + np.maximum(digits[:, k], 0)
    upper = (buf[:, :15] >= ord("A")) & (buf[:, :15] <= ord("Z"))
    flags = upper.reshape(len(texts), 3, 5).astype(np.int64) @ _FLAG_WEIGHTS
    suffix_ok = np.all(buf[:, 15:] == _CHECKSUM_BYTES[flags], axis=1)
    ok &= (lengths == 15) | suffix_ok
    out[idx[ok]] = serial[ok]
    return out


def random_sf_id(prefix: str) -> str:
    """Return a random well-formed id (for locators and other non-row ids)."""
    body = "".join(secrets.choice(BASE62) for _ in range(12))
    id15 = prefix + body
    return id15 + checksum_suffix(id15)


HUBSPOT_ID_BASES: dict[str, int] = {
    "owners": 41_000_000,
    "companies": 20_000_000_000,
    "contacts": 30_000_000_000,
    "deals": 40_000_000_000,
    "calls": 50_000_000_000,
    "emails": 60_000_000_000,
    "tasks": 70_000_000_000,
    "meetings": 80_000_000_000,
}
