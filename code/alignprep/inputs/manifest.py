"""Manifest CSV → typed, validated rows (inputs.md §2).

Every cell is read as text (``000123`` stays ``000123``). File-level problems raise
:class:`~alignprep.errors.InputError`; row-level problems are collected in
:attr:`Manifest.problems` so that one bad row never hides the others. :func:`write_manifests`
writes the results copy (never into the data root) so that the CSV format lives in one place.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alignprep.errors import InputError
from alignprep.inputs.ccf_tracks import NEUROGLANCER, normalise_format
from alignprep.outputs import name_problem, write_bytes_atomic

log = logging.getLogger("alignprep.inputs.manifest")

REQUIRED = ("mouseid", "sorted_recording", "probe_file", "histology_track_id", "ephys_collection")
OPTIONAL = (
    "annotation_format",
    "logical_probe",
    "histology_shank",
    "ephys_shank",
    "surface_finding",
    "registration_asset",
    "template_to_ccf_asset",
    "hemisphere",
    "atlas",
)
#: Column order written by :func:`write_manifests`.
CANONICAL = REQUIRED + OPTIONAL
#: Fallback columns per canonical column, in order of precedence (the canonical column wins).
ALIASES: dict[str, tuple[str, ...]] = {
    "histology_track_id": ("probe_id",),
    "ephys_collection": ("probe_name",),
    "histology_shank": ("probe_shank",),
    "ephys_shank": ("probe_shank", "histology_shank"),
}
INT_COLUMNS = ("histology_shank", "ephys_shank", "probe_shank")
PER_BRAIN = ("registration_asset", "template_to_ccf_asset")
KNOWN = frozenset(CANONICAL) | {"probe_id", "probe_name", "probe_shank"}
KEYS = (
    ("mouseid", "histology_track_id", "histology_shank"),
    ("recording_id", "ephys_collection", "histology_shank"),
    ("recording_id", "ephys_collection", "ephys_shank"),
)
#: Cells that become folder or file names (outputs, asset lookups): names, never paths.
NAME_COLUMNS = (
    "mouseid",
    "sorted_recording",
    "probe_file",
    "histology_track_id",
    "ephys_collection",
)
HEMISPHERES = {"left": "left", "l": "left", "right": "right", "r": "right"}
_INT_RE = re.compile(r"[+-]?(\d+)(?:\.0*)?")
_SORTED_RE = re.compile(r"_sorted(?=_|$)")


@dataclass(frozen=True)
class ManifestRow:
    """One validated manifest row (one histology track x ephys shank pairing)."""

    line: int
    mouseid: str
    sorted_recording: str
    recording_id: str
    probe_file: str
    histology_track_id: str
    ephys_collection: str
    annotation_format: str
    logical_probe: str
    histology_shank: int | None
    ephys_shank: int | None
    surface_finding: str | None
    registration_asset: str | None
    template_to_ccf_asset: str | None
    hemisphere: str | None = None  # "left" | "right": the track is checked against it
    atlas: str | None = None  # the tracing tool's atlas (e.g. allen_mouse_25um), if not in its file

    @property
    def light_sheet(self) -> bool:
        """Whether the row's track is a Neuroglancer annotation of the light-sheet image."""
        return self.annotation_format == NEUROGLANCER


@dataclass(frozen=True)
class RowProblem:
    """Why one row was rejected (several messages joined with ``"; "``)."""

    line: int
    message: str


@dataclass(frozen=True)
class Manifest:
    """A read manifest: the valid rows, the rejected rows and the per-brain values."""

    path: Path
    mouse_id: str
    rows: tuple[ManifestRow, ...]
    problems: tuple[RowProblem, ...]
    warnings: tuple[str, ...]
    registration_asset: str | None
    template_to_ccf_asset: str | None

    def problems_text(self) -> str:
        """One message listing every offending row, one ``<path>: line N: ...`` per line."""
        return "\n".join(f"{self.path}: line {p.line}: {p.message}" for p in self.problems)


def derive_recording_id(sorted_recording: str) -> str:
    """Text before the last ``_sorted`` followed by ``_`` or the end; unchanged if none."""
    matches = list(_SORTED_RE.finditer(sorted_recording))
    return sorted_recording[: matches[-1].start()] if matches else sorted_recording


def _parse_int(text: str) -> int:
    """Parse a non-negative integer leniently (``"1.0"`` → 1); raise ValueError otherwise."""
    match = _INT_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an integer")
    value = int(text.split(".")[0])
    if value < 0:
        raise ValueError(f"{text!r} is negative (must be >= 0)")
    return value


def _lines(items: list[int]) -> str:
    return ", ".join(str(i) for i in sorted(items))


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, stripped cells)`` of every non-blank data record."""
    if not path.is_file():
        raise InputError("manifest file not found (or not a regular file)", file=path)
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=None,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            engine="python",  # the C parser silently cuts a cell at a NUL byte
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError("manifest is empty (expected a CSV with a header row)", file=path) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest is not a readable UTF-8 CSV: {exc}", file=path) from exc
    except OSError as exc:
        raise InputError(f"cannot read manifest: {exc}", file=path) from exc
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    line = 1
    for raw in frame.fillna("").itertuples(index=False, name=None):
        cells = [str(c) for c in raw]
        stripped = [c.strip() for c in cells]
        if any(stripped):
            if header is None:
                header = stripped
            else:
                records.append((line, stripped))
        line += 1 + sum(c.count("\n") for c in cells)  # quoted cells may span lines
    if header is None or not records:
        raise InputError("manifest has no data rows (only a header, or nothing)", file=path)
    return header, records


def _check_header(path: Path, header: list[str], warnings: list[str]) -> None:
    """Raise on duplicate or missing required columns; warn about unknown columns."""
    dupes = sorted(name for name, n in Counter(header).items() if n > 1 and name)
    if dupes:
        raise InputError(f"duplicate column(s) {dupes} in the header", file=path)
    found = set(header)
    missing = [c for c in REQUIRED if c not in found and not found & set(ALIASES.get(c, ()))]
    if missing:
        wanted = ", ".join(
            c + (f" (or alias {' / '.join(ALIASES[c])})" if c in ALIASES else "") for c in missing
        )
        raise InputError(
            f"missing required column(s): {wanted}; columns found: {header}", file=path
        )
    unknown = [
        c if c else f"<unnamed column {i + 1}>" for i, c in enumerate(header) if c not in KNOWN
    ]
    if unknown:
        warnings.append(f"{path}: ignoring unknown column(s) {unknown}")


def _pick(cells: dict[str, str], column: str) -> tuple[str, str]:
    """``(value, source column)``: the canonical cell if non-blank, else the first alias set."""
    for name in (column, *ALIASES.get(column, ())):
        if cells.get(name, ""):
            return cells[name], name
    return "", column


def _parse_row(cells: dict[str, str]) -> tuple[dict[str, object], list[str], bool]:
    """Resolve aliases and types of one row.

    Returns its fields, its problem messages and whether its uniqueness-key cells are usable.
    """
    msgs: list[str] = []
    fields: dict[str, object] = {}
    for column in REQUIRED:
        value, _ = _pick(cells, column)
        if not value:
            also = f" (or {' / '.join(ALIASES[column])})" if column in ALIASES else ""
            msgs.append(f"required cell {column}{also} is blank")
        fields[column] = value
        problem = name_problem(value) if value and column in NAME_COLUMNS else None
        if problem:
            msgs.append(
                f"{column} {value!r} {problem}; expected a plain name (it becomes a folder or "
                "file name, never a path)"
            )
    try:
        fields["annotation_format"] = normalise_format(cells.get("annotation_format", ""))
    except ValueError as exc:
        msgs.append(str(exc))
        fields["annotation_format"] = NEUROGLANCER
    hemisphere = cells.get("hemisphere", "")
    fields["hemisphere"] = HEMISPHERES.get(hemisphere.lower()) if hemisphere else None
    if hemisphere and fields["hemisphere"] is None:
        msgs.append(f"hemisphere {hemisphere!r} is not left or right (or L / R), or blank")
    fields["atlas"] = cells.get("atlas", "") or None
    ints: dict[str, int | None] = {}
    keys_ok = all(fields[c] for c in REQUIRED)
    for column in INT_COLUMNS:
        ints[column] = None
        if cells.get(column, ""):
            try:
                ints[column] = _parse_int(cells[column])
            except ValueError as exc:
                msgs.append(f"{column}: {exc}")
                keys_ok = False
    for column in ("histology_shank", "ephys_shank"):
        fields[column] = ints[_pick(cells, column)[1]]
    rid = derive_recording_id(str(fields["sorted_recording"]))
    fields["recording_id"] = rid
    if fields["sorted_recording"] and rid.count("_") < 2:
        msgs.append(
            f"recording_id {rid!r} (from sorted_recording {fields['sorted_recording']!r}) "
            "needs at least 2 '_' (expected like ecephys_<mouse>_<date>_<time>)"
        )
    fields["logical_probe"] = cells.get("logical_probe", "") or fields["ephys_collection"]
    for column in ("surface_finding", *PER_BRAIN):
        fields[column] = cells.get(column, "") or None
    return fields, msgs, keys_ok


def _key_text(names: tuple[str, ...], fields: dict[str, object]) -> str:
    parts = []
    for name in names:
        value = fields[name]
        parts.append(f"{name}=-1 (blank)" if value is None else f"{name}={value!r}")
    return "(" + ", ".join(parts) + ")"


def _cross_row_checks(
    parsed: dict[int, dict[str, object]], msgs: dict[int, list[str]], usable: set[int]
) -> str:
    """Mixed mouse ids, uniqueness keys and logical_probe agreement; return the mouse id."""
    # majority of the otherwise-valid rows (ties: the first such row), else the first id seen
    counts = Counter(str(f["mouseid"]) for ln, f in parsed.items() if not msgs[ln])
    seen = [str(f["mouseid"]) for f in parsed.values() if f["mouseid"]]
    mouse = counts.most_common(1)[0][0] if counts else (seen[0] if seen else "")
    for ln, f in parsed.items():
        if f["mouseid"] and f["mouseid"] != mouse:
            msgs[ln].append(
                f"mixed mouse ids: mouseid {f['mouseid']!r} differs from {mouse!r} "
                "(one mouse per manifest)"
            )
    complete = {ln: f for ln, f in parsed.items() if ln in usable}
    for names in KEYS:
        groups: dict[tuple[object, ...], list[int]] = defaultdict(list)
        for ln, f in complete.items():
            groups[tuple(-1 if f[n] is None else f[n] for n in names)].append(ln)
        for lines in groups.values():
            if len(lines) > 1:
                text = _key_text(names, complete[lines[0]])
                for ln in lines:
                    msgs[ln].append(f"duplicate key {text} on lines {_lines(lines)}")
    probes: dict[tuple[object, object], dict[str, list[int]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for ln, f in complete.items():
        probes[(f["recording_id"], f["ephys_collection"])][str(f["logical_probe"])].append(ln)
    for (rid, coll), by_probe in probes.items():
        if len(by_probe) > 1:
            detail = ", ".join(f"{p!r} (lines {_lines(ls)})" for p, ls in by_probe.items())
            for ln in (ln for ls in by_probe.values() for ln in ls):
                msgs[ln].append(
                    f"rows of (recording_id={rid!r}, ephys_collection={coll!r}) disagree on "
                    f"logical_probe: {detail}"
                )
    return mouse


def _per_brain(path: Path, column: str, parsed: dict[int, dict[str, object]]) -> str | None:
    """The single non-blank value of a per-brain column; raise if there are several."""
    values: dict[str, list[int]] = defaultdict(list)
    for ln, f in parsed.items():
        if f[column]:
            values[str(f[column])].append(ln)
    if len(values) > 1:
        detail = ", ".join(f"{v!r} (lines {_lines(ls)})" for v, ls in values.items())
        raise InputError(
            f"{column} must have at most one distinct value per brain; found {detail}",
            file=path,
            key=column,
        )
    return next(iter(values), None)


def read_manifest(path: Path) -> Manifest:
    """Read and validate a manifest CSV.

    Raises
    ------
    InputError
        For file-level problems (missing/unreadable file, not a CSV, no data rows, missing
        required column, several per-brain asset values). Row problems go to ``problems``.
    """
    path = Path(path)
    warnings: list[str] = []
    header, records = _read_table(path)
    _check_header(path, header, warnings)
    parsed: dict[int, dict[str, object]] = {}
    msgs: dict[int, list[str]] = {}
    usable: set[int] = set()
    conflicts: list[str] = []
    for line, values in records:
        cells = dict(zip(header, values, strict=False))
        parsed[line], msgs[line], keys_ok = _parse_row(cells)
        if keys_ok:
            usable.add(line)
        for column in ("histology_track_id", "ephys_collection", "histology_shank"):
            value, alias = cells.get(column, ""), ALIASES[column][0]
            if value and cells.get(alias, "") and cells[alias] != value:
                conflicts.append(
                    f"line {line}: {column}={value!r} overrides {alias}={cells[alias]!r}"
                )
    if conflicts:
        warnings.append(f"{path}: canonical column wins over its alias: " + "; ".join(conflicts))
    per_brain = {column: _per_brain(path, column, parsed) for column in PER_BRAIN}
    mouse = _cross_row_checks(parsed, msgs, usable)
    for f, row_msgs in ((parsed[ln], msgs[ln]) for ln in parsed):
        tokens = str(f["recording_id"]).split("_")
        if f["mouseid"] and len(tokens) > 2 and tokens[1] != f["mouseid"]:
            row_msgs.append(
                f"sorted_recording {f['sorted_recording']!r} names subject {tokens[1]!r}, "
                f"not mouseid {f['mouseid']!r} (expected <modality>_{f['mouseid']}_<date>_<time>: "
                "the wrong mouse's recording, or the mouse id without its leading zeros)"
            )
    rows = tuple(
        ManifestRow(line=ln, **f)  # type: ignore[arg-type]
        for ln, f in parsed.items()
        if not msgs[ln]
    )
    problems = tuple(RowProblem(ln, "; ".join(m)) for ln, m in msgs.items() if m)
    if not rows:
        mouse = next((str(f["mouseid"]) for f in parsed.values() if f["mouseid"]), "")
    log.debug("%s: %d valid row(s), %d problem row(s)", path, len(rows), len(problems))
    return Manifest(
        path=path,
        mouse_id=mouse,
        rows=rows,
        problems=problems,
        warnings=tuple(warnings),
        registration_asset=per_brain["registration_asset"],
        template_to_ccf_asset=per_brain["template_to_ccf_asset"],
    )


def write_manifests(manifests: list[Manifest], path: Path) -> None:
    """Write the rows actually used (every mouse), canonical column names, blanks for None."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CANONICAL)
    for manifest in manifests:
        for row in manifest.rows:
            writer.writerow(["" if getattr(row, c) is None else getattr(row, c) for c in CANONICAL])
    write_bytes_atomic(Path(path), buffer.getvalue().encode("utf-8"))
