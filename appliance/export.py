"""The message record exported for a lawful query, signed by the box; and checking such an export anywhere.

An export is one zip file an inspector can take away:

- ``record.jsonl``: every row as the box stores it, one JSON object a line
  (nothing escaped: what a machine reads, and what the chain is checked on);
- ``record.csv``: the same rows for a spreadsheet (UTF-8 with a BOM, cells
  a spreadsheet would run as formulas escaped with a leading ');
- ``manifest.json``: which box (device id, its public key, the shop's name
  and registration number), which range (days, number), the row count, the
  chain's links at both ends of the export and at the head of the whole
  record when it was made, and the SHA-256 of both files;
- ``manifest.sig``: the box's Ed25519 signature over ``manifest.json``
  (appliance/boxkey.py).

:func:`check` (``smsgenie audit verify-export``, which runs on any machine
with the package, no box needed) checks the signature, the files against the
manifest, and every row against its link in the chain, and says what is
wrong in words an inspector can act on. Given the box's public key as the
vendor recorded it (``--key``), it also proves the export came from that box.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Callable

from cryptography.exceptions import InvalidSignature

from appliance.audit import FIELDS_2, AuditLog, digest, safe_cell
from appliance.boxkey import BoxKey
from appliance.errors import ExportCheckFailed, VendorKeyError
from appliance.shop import Shop
from appliance.vendor import parse_public_key

FORMAT = "smsgenie-record-export"
VERSION = 1
DOMAIN = b"smsgenie record export v1\x00"
MANIFEST, SIGNATURE, JSONL, CSV = "manifest.json", "manifest.sig", "record.jsonl", "record.csv"
#: The spreadsheet's columns, in the order a person reads them.
CSV_COLUMNS = ("time", "event", "recipient", "content", "service_code", "outcome", "send_list_id", "message_id",
               "queued_by", "approved_by", "modem", "sim_iccid", "template_id", "basis", "shop_name", "shop_licence",
               "id", "hash")


@dataclass(frozen=True)
class Range:
    first_day: str
    last_day: str
    start: float
    end: float
    number: str | None = None


class _Hashed:
    """A writable file that hashes what goes through it; text (from csv.writer) is written as UTF-8."""

    def __init__(self, f: IO[bytes]):
        self.f, self.sha = f, hashlib.sha256()

    def write(self, data: bytes | str) -> int:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sha.update(data)
        return self.f.write(data)


def write(out: IO[bytes], audit: AuditLog, key: BoxKey, span: Range, *, device: str, shop: Shop, software: str,
          timestamps: Callable[[float], str], now: datetime) -> dict:
    """Write the export of ``span`` to ``out`` (a new file, or a temporary one to download); returns the manifest.

    The rows are read twice (once per file) up to the record's head as it was at the start, so rows
    written meanwhile are in neither."""
    written, head = audit.state()
    rows = lambda: audit.rows(span.start, span.end, span.number, upto=written)  # noqa: E731
    summary = {"rows": 0, "first_id": None, "last_id": None, "head_before": None, "head_after": None}
    files = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(JSONL, "w") as raw:
            f = _Hashed(raw)
            for r in rows():
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
                if summary["first_id"] is None:
                    summary["first_id"], summary["head_before"] = r["id"], r["prev_hash"]
                summary["rows"] += 1
                summary["last_id"], summary["head_after"] = r["id"], r["hash"]
            files[JSONL] = f.sha.hexdigest()
        with zf.open(CSV, "w") as raw:
            f = _Hashed(raw)
            f.write("\ufeff".encode("utf-8"))  # a BOM: Excel opens Chinese text right
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for r in rows():
                writer.writerow([safe_cell(timestamps(r["at"]) if c == "time" else r.get(c)) for c in CSV_COLUMNS])
            files[CSV] = f.sha.hexdigest()
        manifest = {
            "format": FORMAT, "version": VERSION, "device": device, "box_key": key.public_line,
            "box_key_id": key.key_id, "shop": {"name": shop.name, "licence": shop.licence},
            "software": software, "created": now.isoformat(timespec="seconds"),
            "range": {"from": span.first_day, "to": span.last_day, "start": span.start, "end": span.end,
                      "number": span.number},
            **summary, "record": {"rows_written": written, "head": head},
            "fields": list(FIELDS_2), "files": files}
        body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
        zf.writestr(MANIFEST, body)
        zf.writestr(SIGNATURE, base64.b64encode(key.sign(DOMAIN, body)) + b"\n")
    return manifest


def export_box(out: IO[bytes], queue, data_dir, span: Range, now: datetime | None = None) -> dict:
    """The export of this box's record (``queue``'s, in ``data_dir``), as the CLI and the page make it."""
    from importlib.metadata import version  # noqa: PLC0415

    from appliance import boxkey, shop  # noqa: PLC0415
    from appliance.device import format_device_id, this_device_id  # noqa: PLC0415

    return write(out, queue.audit, boxkey.load(data_dir), span, device=format_device_id(this_device_id(data_dir)),
                 shop=shop.read(queue.db.conn), software=version("smsgenie"),
                 timestamps=lambda at: datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S"),
                 now=now or datetime.fromtimestamp(queue.clock.time()).astimezone())


def _manifest(zf: zipfile.ZipFile, expected_key: str | None) -> dict:
    names = set(zf.namelist())
    missing = [n for n in (MANIFEST, SIGNATURE, JSONL, CSV) if n not in names]
    if missing:
        raise ExportCheckFailed(f"this is not a whole record export: {', '.join(missing)} missing from it")
    body = zf.read(MANIFEST)
    try:
        manifest = json.loads(body)
        public, key_id = parse_public_key(manifest["box_key"])
    except (ValueError, KeyError, TypeError, VendorKeyError):
        raise ExportCheckFailed("the manifest is damaged: it cannot be read or has no box key") from None
    try:
        signature = base64.b64decode(zf.read(SIGNATURE).strip(), validate=True)
        if len(signature) != 64:
            raise ValueError
        public.verify(signature, DOMAIN + body)
    except (ValueError, binascii.Error):
        raise ExportCheckFailed(f"the signature ({SIGNATURE}) is missing or damaged") from None
    except InvalidSignature:
        raise ExportCheckFailed("the manifest's signature does not match: the manifest was changed after the "
                                "box signed it") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ExportCheckFailed(f"this is not a record export this program reads (format "
                                f"{manifest.get('format')} {manifest.get('version')})")
    if expected_key is not None:
        try:
            _, wanted = parse_public_key(expected_key)
        except VendorKeyError:
            raise ExportCheckFailed("the --key given is not a box key (expected the ed25519:... line the box "
                                    "printed)") from None
        if wanted != key_id:
            raise ExportCheckFailed(f"the export was signed by key {key_id}, not by the box key {wanted} you "
                                    f"gave: it did not come from that box")
    return manifest


def _rows(zf: zipfile.ZipFile, manifest: dict) -> int:
    """Check every row against its link, its neighbours and the range; returns the count."""
    span, count, prev, first = manifest["range"], 0, None, None
    with zf.open(JSONL) as f:
        for line_no, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                ok = digest(row["prev_hash"], row) == row["hash"]
            except (ValueError, KeyError, TypeError):
                raise ExportCheckFailed(f"line {line_no} of {JSONL} is not a row of the record") from None
            if not ok:
                raise ExportCheckFailed(f"row {row['id']} (line {line_no}) was changed after the box wrote it")
            if prev is not None and (row["id"] <= prev["id"]
                                     or (row["id"] == prev["id"] + 1 and row["prev_hash"] != prev["hash"])):
                raise ExportCheckFailed(f"row {row['id']} does not follow row {prev['id']} in the chain")
            if prev is not None and not span["number"] and row["id"] != prev["id"] + 1:
                raise ExportCheckFailed(f"rows {prev['id'] + 1} to {row['id'] - 1} are missing: the export, or "
                                        f"the record it was made from, was cut")
            if span["number"] and (row["recipient"] != span["number"] or not span["start"] <= row["at"] < span["end"]):
                raise ExportCheckFailed(f"row {row['id']} is outside the export's range")
            if prev is None:
                first = row
                if row["prev_hash"] != manifest["head_before"]:
                    raise ExportCheckFailed("the first row is not the one the manifest names")
            prev, count = row, count + 1
    if not span["number"] and count and not (span["start"] <= first["at"] < span["end"]
                                             and span["start"] <= prev["at"] < span["end"]):
        raise ExportCheckFailed("the export's first or last row is outside its range")
    if count != manifest["rows"] or (prev and prev["hash"] != manifest["head_after"]):
        raise ExportCheckFailed(f"{JSONL} has {count} rows, the manifest says {manifest['rows']}: rows were "
                                f"removed or added")
    return count


def check(path_or_file, expected_key: str | None = None) -> dict:
    """Check an export; returns its manifest, or raises :class:`ExportCheckFailed` saying what is wrong."""
    try:
        zf = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExportCheckFailed(f"not a record export (not a readable zip file: {exc})") from None
    with zf:
        manifest = _manifest(zf, expected_key)
        for name, wanted in manifest["files"].items():
            sha = hashlib.sha256()
            with zf.open(name) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sha.update(chunk)
            if sha.hexdigest() != wanted:
                raise ExportCheckFailed(f"{name} is not the file the box signed: it was changed")
        _rows(zf, manifest)
    return manifest
