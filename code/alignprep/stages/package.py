"""``datapackage.json``: the per-mouse index of what the GUIs read (outputs.md §7).

The document follows the 4.4.0 layout (4.1.0 with, per probe, an optional ``channel_regions``
entry, an optional ``qc`` entry: the QC page, ``quality_control.json`` and the figures, and
``light_sheet``: false for a mouse traced with other tools in the CCF, whose transforms,
histology and image-space picks are null) and is checked against the JSON Schema shipped in
``alignprep/schemas/``. Every file reference is ``{"asset": key | null, "path": relative}``: a
null asset is relative to the mouse folder (where ``datapackage.json`` lives); otherwise ``key``
names an ``external_assets`` entry and ``path`` is inside that asset's folder under
``data_root``.
Nothing is written unless every referenced file exists and the document validates. Track success
is keyed by (track, shank), i.e. by manifest row, so a failed shank never drops a good one. The
bytes depend only on the inputs (no timestamps; keys sorted).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import outputs
from ..logs import get_logger
from ..space.transforms import sha256
from .context import MouseContext
from .datapackage import CODE_OCEAN_DATA, SCHEMA_VERSION, PackageError, schema_errors
from .histology import HistologyResult
from .probes import TrackResult

log = get_logger("stages.package")

CHANNEL_FILES = {
    "local_coordinates": "channels.localCoordinates.npy",
    "raw_ind": "channels.rawInd.npy",
    "shank_ind": "channels.shankInd.npy",
}
CONTACT_ID_FILE = "channels.contactId.npy"
T2C_PIPELINE_FILES = ("syn_0GenericAffine.mat", "syn_1InverseWarp.nii.gz")
ASSET_ROLES = {  # external_assets key -> (role, how the asset was chosen)
    "smartspim": ("smartspim_registration", "neuroglancer state"),
    "spim_template_to_ccf": ("template_to_ccf", "references.template_to_ccf_dir"),
    "registration": ("registration_override", "manifest registration_asset"),
    "template_to_ccf": ("template_to_ccf_override", "manifest template_to_ccf_asset"),
}


@dataclass
class PackageResult:
    """What :func:`write_datapackage` wrote, and the probe groups it left out (with why)."""

    path: Path
    document: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    dropped: dict[tuple[str, str], str] = field(default_factory=dict)


# --- writing ---------------------------------------------------------------------------------


@dataclass
class _Asset:
    key: str
    role: str
    name: str
    root: Path  # the asset's folder
    uri: str | None
    source: str
    files: dict[str, Path] = field(default_factory=dict)  # path inside -> absolute

    def entry(self) -> dict[str, Any]:
        digests = {inner: f"sha256:{sha256(p)}" for inner, p in sorted(self.files.items())}
        listing = "".join(f"{d.removeprefix('sha256:')}  {inner}\n" for inner, d in digests.items())
        checksum = f"sha256:{hashlib.sha256(listing.encode()).hexdigest()}" if digests else None
        return {
            "role": self.role,
            "name": self.name,
            "id": None,
            "uri": self.uri,
            "checksum": checksum,
            "provenance": {"source": self.source, "files": digests},
        }


def _relative(path: Path, base: Path) -> PurePosixPath | None:
    """``path`` relative to ``base`` (lexically, then through symlinks); None if outside."""
    for p, b in ((path, base), (Path(path).resolve(), Path(base).resolve())):
        rel = os.path.relpath(os.path.normpath(p), os.path.normpath(b))
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep) and not os.path.isabs(rel):
            return PurePosixPath(Path(rel).as_posix())
    return None


def _asset(key: str, folder: Path, data_root: Path) -> _Asset:
    """The asset holding ``folder``: its top folder under ``data_root``, else ``folder`` itself."""
    role, source = ASSET_ROLES[key]
    rel = _relative(folder, data_root)
    if rel is not None and rel.parts:
        return _Asset(key, role, rel.parts[0], Path(data_root) / rel.parts[0], None, source)
    folder = Path(os.path.normpath(folder))
    return _Asset(key, role, folder.name, folder, folder.as_uri(), source)


class _Refs:
    """Builds references and remembers what each must resolve to."""

    def __init__(self, package_dir: Path, assets: dict[str, _Asset]) -> None:
        self.package_dir = package_dir
        self.assets = assets
        self.expected: list[tuple[Path, bool]] = []  # (absolute path, is a folder)

    def local(self, path: Path, folder: bool = False) -> dict[str, Any]:
        rel = _relative(path, self.package_dir)
        if rel is None or str(rel) == ".":
            raise PackageError(f"{path} is not inside the package folder {self.package_dir}")
        self.expected.append((Path(path), folder))
        return {"asset": None, "path": str(rel)}

    def external(self, key: str, path: Path) -> dict[str, Any]:
        asset = self.assets[key]
        rel = _relative(path, asset.root)
        if rel is None:
            raise PackageError(f"{path} is not inside asset {asset.name!r} ({asset.root})")
        asset.files[str(rel)] = Path(path)
        self.expected.append((Path(path), False))
        return {"asset": key, "path": str(rel)}

    def missing(self) -> list[Path]:
        return [p for p, folder in self.expected if not (p.is_dir() if folder else p.is_file())]


def _external_assets(ctx: MouseContext) -> dict[str, _Asset]:
    cfg, asset, t2c = ctx.config, ctx.asset, ctx.template_to_ccf
    t2c_pipeline = Path(cfg.references.template_to_ccf_dir)
    out = {
        "smartspim": _asset("smartspim", asset.path, cfg.data_root),
        "spim_template_to_ccf": _asset("spim_template_to_ccf", t2c_pipeline, cfg.data_root),
    }
    if _relative(asset.registration_dir, asset.path) is None:
        out["registration"] = _asset("registration", asset.registration_dir, cfg.data_root)
    if t2c.is_override:
        out["template_to_ccf"] = _asset("template_to_ccf", t2c.directory, cfg.data_root)
        pipeline = out["spim_template_to_ccf"]  # what the Allen GUI loads: record, not reference
        for path in (t2c_pipeline / name for name in T2C_PIPELINE_FILES):
            rel = _relative(path, pipeline.root)
            if path.is_file() and rel is not None:
                pipeline.files[str(rel)] = path
    return out


def _build(
    ctx: MouseContext,
    tracks: Sequence[TrackResult],
    ephys_dirs: Mapping[tuple[str, str], Path | None] | None,
    regions: Collection[tuple[str, str]] = (),
    qc_files: Sequence[Path] = (),
) -> tuple[dict[str, Any], _Refs, dict[str, _Asset], PackageResult]:
    """The document (checksums not yet filled), its references and the groups left out."""
    cfg, mouse = ctx.config, ctx.mouse_id
    root = cfg.results_root
    package_dir = outputs.mouse_dir(root, mouse)
    result = PackageResult(outputs.datapackage_path(root, mouse), {})
    assets = _external_assets(ctx) if ctx.light_sheet else {}
    refs = _Refs(package_dir, assets)
    transforms, histology = _light_sheet(ctx, refs) if ctx.light_sheet else (None, None)
    probes: dict[str, dict[str, Any]] = {}
    for key, group in _groups(tracks).items():
        entry = _probe(ctx, key, group, ephys_dirs, refs, result)
        if entry is not None:
            entry["channel_regions"] = _regions(ctx, key, refs) if key in regions else None
            probes.setdefault(key[0], {})[key[1]] = entry
    on_code_ocean = _relative(cfg.data_root, CODE_OCEAN_DATA) is not None
    document = {
        "schema_version": SCHEMA_VERSION,
        "mouse_id": mouse,
        "platform": "code_ocean" if on_code_ocean else "local",
        "light_sheet": ctx.light_sheet,
        "external_assets": {},
        "transforms": transforms,
        "histology": histology,
        "probes": probes,
        "qc": _qc(root, mouse, qc_files, refs),
    }
    return document, refs, assets, result


def _light_sheet(ctx: MouseContext, refs: _Refs) -> tuple[dict[str, Any], dict[str, Any]]:
    """The transforms and histology entries of a mouse with its SmartSPIM image."""
    cfg, mouse, root, assets = ctx.config, ctx.mouse_id, ctx.config.results_root, refs.assets
    ls_key = "registration" if "registration" in assets else "smartspim"
    t2c_key = "template_to_ccf" if ctx.template_to_ccf.is_override else "spim_template_to_ccf"
    ls, t2c = ctx.asset.ls_to_template, ctx.template_to_ccf.registration
    transforms = {
        "image_to_template_affine": refs.external(ls_key, ls.affine),
        "image_to_template_warp": refs.external(ls_key, ls.inverse_warp),
        "template_to_ccf_affine": refs.external(t2c_key, t2c.affine),
        "template_to_ccf_warp": refs.external(t2c_key, t2c.inverse_warp),
    }
    hist = outputs.histology_paths(root, mouse)
    others = [c for c in ctx.asset.channels if c != ctx.asset.registration_channel]
    qc = [outputs.ccf_space_path(root, mouse, c) for c in ctx.asset.channels]
    qc = [p for p in qc if cfg.histology.write_ccf_space and p.is_file()]  # QC may be skipped
    image_space = {
        "registration": refs.local(hist["registration"]),
        "registration_pipeline_geometry": refs.local(hist["registration_pipeline_json"]),
        "ccf_template": refs.local(hist["ccf_template"]),
        "labels": refs.local(hist["labels"]),
        "additional_channels": [refs.local(outputs.channel_path(root, mouse, c)) for c in others],
    }
    ccf_space = {"additional_channels": [refs.local(p) for p in qc]} if qc else None
    return transforms, {"image_space": image_space, "ccf_space": ccf_space}


def _qc(root: Path, mouse: str, qc_files: Sequence[Path], refs: _Refs) -> dict[str, Any] | None:
    """The QC entry: the page, the metadata and every figure the page shows."""
    if not qc_files:
        return None
    qc = outputs.qc_dir(root, mouse)
    figures = sorted(p for p in qc_files if p.suffix == ".png")
    return {
        "page": refs.local(qc / outputs.QC_PAGE_NAME),
        "quality_control": refs.local(qc.parent / outputs.QUALITY_CONTROL_NAME),
        "figures": [refs.local(p) for p in figures],
    }


def _groups(tracks: Sequence[TrackResult]) -> dict[tuple[str, str], list[TrackResult]]:
    groups: dict[tuple[str, str], list[TrackResult]] = {}
    for res in tracks:
        groups.setdefault((res.row.recording_id, res.row.ephys_collection), []).append(res)
    return groups


def _probe(
    ctx: MouseContext,
    key: tuple[str, str],
    group: list[TrackResult],
    ephys_dirs: Mapping[tuple[str, str], Path | None] | None,
    refs: _Refs,
    result: PackageResult,
) -> dict[str, Any] | None:
    """One probe group, or None (recorded in ``result.dropped``) when it cannot be included."""
    recording, collection = key
    # One result per manifest row = per (histology_track_id, histology_shank): a failed shank
    # never hides a good shank of the same track.
    ok = {(r.row.histology_track_id, r.row.histology_shank): r for r in group if r.status == "ok"}

    def drop(reason: str) -> None:
        result.dropped[key] = reason
        result.warnings.append(f"probe {recording}/{collection} left out of datapackage: {reason}")
        log.warning("%s", result.warnings[-1])

    if not ok:
        drop("no track of this probe succeeded")
        return None
    ephys, table = None, None
    if ephys_dirs is not None:
        folder = ephys_dirs.get(key)
        if folder is None:
            drop("its ephys was not extracted")
            return None
        absent = [name for name in CHANNEL_FILES.values() if not (Path(folder) / name).is_file()]
        if absent:
            drop(f"{folder} lacks {', '.join(absent)}")
            return None
        ephys = refs.local(Path(folder), folder=True)
        table = {k: refs.local(Path(folder) / name) for k, name in CHANNEL_FILES.items()}
        contact = Path(folder) / CONTACT_ID_FILE
        table["contact_id"] = refs.local(contact) if contact.is_file() else None
    probe = outputs.probe_dir(ctx.config.results_root, ctx.mouse_id, recording, collection)
    picks = []
    for res in sorted(ok.values(), key=_pick_order):
        paths = outputs.picks_paths(probe, res.suffix)
        row = res.row
        picks.append(
            {
                "ccf": refs.local(paths["bregma"]),
                "image_space": refs.local(paths["image_space"]) if row.light_sheet else None,
                "histology_track_id": row.histology_track_id,
                "histology_shank": row.histology_shank,
                "ephys_shank": row.ephys_shank,
                "shank": (row.ephys_shank or 0) + 1,
            }
        )
    first = next(iter(ok.values())).row
    return {
        "probe_id": f"{recording}/{collection}",
        "logical_probe": first.logical_probe,
        "ephys_collection": collection,
        "num_shanks": len({r.row.ephys_shank or 0 for r in group}),
        "ephys": ephys,
        "channel_table": table,
        "xyz_picks": picks,
    }


def _regions(ctx: MouseContext, key: tuple[str, str], refs: _Refs) -> dict[str, Any] | None:
    """The channel regions folder of a probe and its per-shank files (None if none written)."""
    probe = outputs.probe_dir(ctx.config.results_root, ctx.mouse_id, *key)
    folder = outputs.channel_regions_dir(probe)
    suffixes = sorted(outputs.channel_regions_suffixes(folder))
    if not suffixes:
        return None
    shanks = []
    for suffix in suffixes:
        paths = outputs.channel_regions_paths(probe, suffix)
        shanks.append(
            {
                "suffix": suffix,
                "channels": refs.local(paths["channels"]),
                "regions": refs.local(paths["regions"]),
            }
        )
    return {"folder": refs.local(folder, folder=True), "shanks": shanks}


def _pick_order(res: TrackResult) -> tuple[int, int, str]:
    row = res.row
    hist = -1 if row.histology_shank is None else row.histology_shank
    return (row.ephys_shank or 0, hist, row.histology_track_id)


def write_datapackage(
    ctx: MouseContext,
    tracks: Sequence[TrackResult],
    histology: HistologyResult,
    ephys_dirs: Mapping[tuple[str, str], Path | None] | None = None,
    regions: Collection[tuple[str, str]] = (),
    qc_files: Sequence[Path] = (),
) -> PackageResult:
    """Write ``<mouse>/datapackage.json`` for what ran; nothing at all on any error.

    Parameters
    ----------
    ctx
        The mouse context (assets, transforms, config).
    tracks
        Every :class:`TrackResult` of the mouse (failed ones included).
    histology
        The histology stage's result; it must have succeeded (only ``status`` and ``reason``
        are read, so an unchanged re-run may pass ``HistologyResult()``). The CCF-space QC
        volumes are referenced when ``histology.write_ccf_space`` is set and they exist.
    ephys_dirs
        ``None`` when ephys was skipped (``ephys`` and ``channel_table`` are then null);
        otherwise the ALF folder of each ``(recording_id, ephys_collection)``, ``None`` for a
        probe whose extraction failed (that probe is left out, with a warning).
    regions
        The ``(recording_id, ephys_collection)`` whose channel regions succeeded: their
        ``channel_regions`` entry lists the files; every other probe's is null.
    qc_files
        The QC page, ``quality_control.json`` and the figures they show, when they were
        written: the ``qc`` entry lists them (null otherwise).

    Raises
    ------
    PackageError
        Histology failed, a referenced file is missing (``missing`` lists them), or the
        document does not validate against the shipped schema.
    """
    if histology.status != "ok":
        raise PackageError(
            f"datapackage.json not written: histology {histology.status} ({histology.reason})"
        )
    document, refs, assets, result = _build(ctx, tracks, ephys_dirs, regions, qc_files)
    missing = sorted(set(refs.missing()))
    if missing:
        raise PackageError(
            f"{result.path} not written: {len(missing)} referenced file(s) missing: "
            + ", ".join(str(p) for p in missing),
            missing=missing,
        )
    document["external_assets"] = {key: a.entry() for key, a in assets.items()}
    problems = schema_errors(document)
    if problems:
        raise PackageError(f"{result.path} not written: invalid document: " + "; ".join(problems))
    outputs.write_bytes_atomic(result.path, outputs.json_bytes(document))
    result.document = document
    n_probes = sum(len(c) for c in document["probes"].values())
    log.info("datapackage: %s (%d probe folder(s))", result.path, n_probes)
    return result
