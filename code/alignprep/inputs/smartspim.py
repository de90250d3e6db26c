"""SmartSPIM asset discovery: orientation, processing versions, channels and registration files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import InputError
from ..reads import note_listing
from ..space.frames import validate_code
from ..space.transforms import Registration
from .locate import read_json_object
from .ng_sources import CHANNEL_SUFFIXES, channel_name
from .omezarr import Multiscale, check_same_pyramid, read_multiscale

OMEZARR_DIR = Path("image_tile_fusing") / "OMEZarr"
ALIGNMENT_DIR = "image_atlas_alignment"
LEGACY_ALIGNMENT_DIR = "registration"
LS_PREFIX = "ls_to_template_SyN_"
ATLAS_ALIGNMENT_NOTES = "Template based registration: LS -> template -> Allen CCFv3 Atlas"
SIDECAR_NAMES = ("ls_to_template_transform_information.json", "transform_information.json")


def orientation_code(metadata_path: Path) -> str:
    """ITK orientation code from ``metadata.nd.json`` ``acquisition.axes`` (inputs.md §5).

    Each axis ``{name, dimension, direction: "<From>_to_<To>"}``: the letter is the first
    character of the last ``_`` token; letters are mapped by name onto zarr (z, y, x), then
    reversed to ITK (x, y, z).
    """
    meta = read_json_object(metadata_path)
    acquisition = meta.get("acquisition")
    axes = acquisition.get("axes") if isinstance(acquisition, dict) else None
    if not isinstance(axes, list) or len(axes) != 3:
        raise InputError("acquisition.axes: expected 3 axes (X, Y, Z)", file=metadata_path)
    letters: dict[str, str] = {}
    for ax in axes:
        try:
            name = str(ax["name"]).lower()
            letter = str(ax["direction"]).split("_")[-1][:1].upper()
        except (KeyError, TypeError):
            raise InputError(
                f"acquisition.axes entry {ax!r}: expected name and direction", file=metadata_path
            ) from None
        letters[name] = letter
    if sorted(letters) != ["x", "y", "z"]:
        raise InputError(
            f"acquisition.axes names {sorted(letters)}: expected x, y, z", file=metadata_path
        )
    code = letters["x"] + letters["y"] + letters["z"]
    try:
        return validate_code(code)
    except ValueError as exc:
        raise InputError(str(exc), file=metadata_path, key="acquisition.axes") from None


@dataclass(frozen=True)
class Processing:
    """What ``processing.json`` says about the import and the registration."""

    pipeline_version: str
    import_version: str
    registration_channel: str
    warnings: tuple[str, ...] = ()


def read_processing(path: Path) -> Processing:
    """Pipeline version (major >= 3), zarr-import version, registration channel (inputs.md §6)."""
    proc = read_json_object(path).get("processing_pipeline")
    if not isinstance(proc, dict):
        raise InputError("no processing_pipeline object", file=path)
    warnings = []
    raw_version = str(proc.get("pipeline_version", ""))
    try:
        major = Version(raw_version.lstrip("v")).major
    except InvalidVersion:
        raise InputError(
            f"pipeline_version {raw_version!r} is not a version",
            file=path,
            key="processing_pipeline.pipeline_version",
        ) from None
    if major < 3:
        raise InputError(
            f"pipeline_version {raw_version}: major version >= 3 required",
            file=path,
            key="processing_pipeline.pipeline_version",
        )
    if major > 5:
        warnings.append(f"pipeline_version {raw_version} is newer than the verified 3-5")
    processes = [p for p in proc.get("data_processes") or [] if isinstance(p, dict)]
    importing = [p for p in processes if p.get("name") == "Image importing"]
    if not importing or not importing[0].get("code_version"):
        raise InputError(
            "no 'Image importing' process with a code_version",
            file=path,
            key="processing_pipeline.data_processes",
        )
    aligning = [
        p
        for p in processes
        if p.get("name") == "Image atlas alignment" and p.get("notes") == ATLAS_ALIGNMENT_NOTES
    ]
    if not aligning or not aligning[0].get("input_location"):
        raise InputError(
            "no 'Image atlas alignment' process (LS -> template -> CCF) with an input_location",
            file=path,
            key="processing_pipeline.data_processes",
        )
    folder = Path(str(aligning[0]["input_location"]).rstrip("/")).name
    channel = channel_name(folder) or folder
    return Processing(raw_version, str(importing[0]["code_version"]), channel, tuple(warnings))


@dataclass(frozen=True)
class SmartSpimAsset:
    """A stitched SmartSPIM asset as this capsule uses it."""

    path: Path
    orientation: str  # ITK code
    processing: Processing
    registration_channel: str
    channels: dict[str, Path]  # name -> <name>.zarr or <name>.ome.zarr, sorted by name
    registration_dir: Path
    ls_to_template: Registration
    sidecar: dict[str, Any] | None
    sidecar_path: Path | None

    @property
    def registration_zarr(self) -> Path:
        """The registration channel's OME-Zarr."""
        return self.channels[self.registration_channel]

    def multiscale(self, channel: str | None = None) -> Multiscale:
        """Multiscale metadata of a channel (default: the registration channel)."""
        return read_multiscale(self.channels[channel or self.registration_channel])

    def additional_channels(self) -> list[Multiscale]:
        """Every other channel, checked to share the registration channel's pyramid."""
        ref = self.multiscale()
        out = []
        for name in self.channels:
            if name != self.registration_channel:
                other = self.multiscale(name)
                check_same_pyramid(ref, other)
                out.append(other)
        return out


def find_channels(zarr_dir: Path) -> dict[str, Path]:
    """Every channel folder ``<channel>.zarr`` or ``<channel>.ome.zarr``, sorted by name.

    Raises
    ------
    InputError
        No channel, or one channel written both ways (which one to read is ambiguous).
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(note_listing(zarr_dir, "*.zarr").glob("*.zarr")):
        name = channel_name(path.name)
        if path.is_dir() and name:
            found.setdefault(name, []).append(path)
    if not found:
        expected = " or ".join(f"<channel>{sfx}" for sfx in CHANNEL_SUFFIXES[::-1])
        raise InputError(f"no channel folder found; expected {expected}", file=zarr_dir)
    twice = {name: paths for name, paths in found.items() if len(paths) > 1}
    if twice:
        listing = "; ".join(f"{n}: {', '.join(p.name for p in ps)}" for n, ps in twice.items())
        raise InputError(
            f"channel(s) present in more than one folder ({listing}); expected one folder per "
            "channel",
            file=zarr_dir,
        )
    return {name: paths[0] for name, paths in sorted(found.items())}


def discover(asset: Path, registration_override: Path | None = None) -> SmartSpimAsset:
    """Read a SmartSPIM asset: orientation, processing, channels and the LS -> template files."""
    asset = Path(asset)
    if not asset.is_dir():
        raise InputError("SmartSPIM asset folder not found", file=asset)
    code = orientation_code(asset / "metadata.nd.json")
    processing = read_processing(asset / "processing.json")
    zarr_dir = asset / OMEZARR_DIR
    channels = find_channels(zarr_dir)
    if registration_override is not None:
        reg_dir = Path(registration_override)
        channel = reg_dir.name.removeprefix("ccf_")
    else:
        channel = processing.registration_channel
        reg_dir = asset / ALIGNMENT_DIR / channel
        if not reg_dir.is_dir() and (asset / LEGACY_ALIGNMENT_DIR).is_dir():
            reg_dir = asset / LEGACY_ALIGNMENT_DIR
    if channel not in channels:
        raise InputError(
            f"registration channel {channel!r} has no zarr; channels found: {', '.join(channels)}",
            file=zarr_dir,
        )
    registration = Registration.from_prefix(reg_dir / LS_PREFIX)
    sidecar_path = next((reg_dir / n for n in SIDECAR_NAMES if (reg_dir / n).is_file()), None)
    if registration_override is not None and sidecar_path is None:
        raise InputError(
            "a registration_asset override needs a transform sidecar "
            f"({' or '.join(SIDECAR_NAMES)})",
            file=reg_dir,
        )
    sidecar = read_json_object(sidecar_path) if sidecar_path else None
    return SmartSpimAsset(
        asset, code, processing, channel, channels, reg_dir, registration, sidecar, sidecar_path
    )
