"""The checks of one ANTs registration, in three phases (see ``transform_check``).

1. ``read_files`` and ``sample``: pure Python (files, grids, fixed image, sample points P);
2. ``tasks``: the ANTs calls the caller runs in a child process (``ants_worker``): ITK's
   reading of every warp header and of the affine;
3. ``conclude``: ITK's reading against ours, the round trip, the image similarity.

The caller reads (and decodes) each warp once into the run's
:class:`~alignprep.inputs.field_store.FieldStore` and hands the outcomes over; the warps map P
there, with ANTs's rules and the same code every track and volume of the run then uses (ITK
would read each ~1 GB file again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..space.fields import ChainMap
from ..space.frames import ImageHeader
from ..space.transforms import Registration
from .ants_worker import AntsTask, TaskOutcome
from .field_store import DecodedField
from .registration_images import (
    ImageSource,
    foreground,
    rank_similarity,
    sample_image,
    sample_points,
    uncovered_voxels,
)
from .transform_files import (
    ItkAffine,
    Problem,
    TransformLimits,
    WarpScan,
    affine_problems,
    read_itk_affine,
)

PROBE_OFFSET_MM = 5.0
HEADER_ATOL_MM = 1e-3  # ants.image_header_info rounds to 4 decimals


@dataclass(frozen=True)
class RegistrationCheck:
    """One registration and the images it was computed between (None: not available, why)."""

    name: str
    registration: Registration
    fixed: ImageSource | None
    moving: ImageSource | None
    fixed_missing: str = "no fixed image"
    moving_missing: str = "no moving image"


class RegistrationChecker:
    """The state of one registration's check across its three phases."""

    def __init__(
        self,
        item: RegistrationCheck,
        limits: TransformLimits,
        fields: Mapping[Path, DecodedField | InputError],
    ) -> None:
        self.item = item
        self.fields = fields  # every warp file, read and decoded (or why not), by path
        self.decoded: dict[str, DecodedField] = {}  # role -> the decoded warp
        self.reg = item.registration
        self.limits = limits
        self.where = str(self.reg.affine.parent)
        self.problems: list[Problem] = []
        self.facts: list[str] = []
        self.rng = np.random.default_rng(limits.seed)
        self.affine: ItkAffine | None = None
        self.points = np.empty((0, 3))
        self.fixed_values: np.ndarray | None = None

    @property
    def scans(self) -> dict[str, WarpScan]:
        """What the complete read of each warp found, by role."""
        return {role: field.scan for role, field in self.decoded.items()}

    def warn(self, message: str, file: str | None = None) -> None:
        self.problems.append(Problem(file or self.where, f"{self.item.name}: {message}", False))

    # --- phase 1: files, grids, sample points (no ANTs) ------------------------------------

    def read_files(self) -> None:
        """Parse the affine and stream each warp to its end; compare the two warp grids."""
        reg = self.reg
        try:
            affine = read_itk_affine(reg.affine)
            found = affine_problems(affine, reg.affine, self.limits)
            self.problems += found
            if not any(p.fatal for p in found):  # ITK crashes inverting a singular matrix
                self.affine = affine
                sv = np.linalg.svd(affine.matrix, compute_uv=False)
                self.facts.append(f"affine scale {sv.min():.3f}-{sv.max():.3f}")
        except InputError as exc:
            self.problems.append(Problem.from_error(exc))
        for role, path in (("InverseWarp", reg.inverse_warp), ("Warp", reg.warp)):
            if path is not None:
                found = self.fields[path]
                if isinstance(found, InputError):
                    self.problems.append(Problem.from_error(found))
                else:
                    self.decoded[role] = found
        if reg.warp is None:
            self.warn(
                "no 1Warp.nii.gz beside it: the Warp/InverseWarp round trip is not possible "
                "(the image check uses the first-order Warp = -InverseWarp)",
                str(reg.inverse_warp),
            )
        if self.scans:
            peaks = ", ".join(f"{r} {s.max_abs_mm:.3g} mm" for r, s in self.scans.items())
            self.facts.append(f"warps read completely (max |u|: {peaks})")
        if "Warp" in self.scans and "InverseWarp" in self.scans:
            self.problems += _same_grid(self.scans["Warp"], self.scans["InverseWarp"])

    def sample(self) -> None:
        """Grid coverage of the fixed image's foreground, and the sample points P."""
        grid = self.scans.get("InverseWarp") or self.scans.get("Warp")
        if grid is None:
            return
        fixed = self._load(self.item.fixed, "fixed")
        fg = foreground(fixed[0], self.rng) if fixed else None
        if fixed and fg is None:
            self.warn(f"{self.item.fixed.description} has no contrast")
        if fixed and fg:
            for scan in self.scans.values():
                self._coverage(scan, fg, fixed[1])
            self.facts.append(f"grids cover the {self.item.fixed.name} foreground")
        else:
            reason = self.item.fixed_missing if self.item.fixed is None else "see above"
            self.warn(f"warp grid coverage of the fixed image not checked: {reason}")
        self.points, self.fixed_values = sample_points(
            fixed[0] if fixed else None,
            fixed[1] if fixed else None,
            fg,
            grid.header,
            self.limits.n_points,
            self.rng,
        )

    def _load(self, source: ImageSource | None, role: str):
        if source is None:
            return None
        try:
            return source.load()
        except (InputError, OSError, ValueError, RuntimeError) as exc:
            self.warn(f"cannot read the {role} image {source.description}: {exc}")
            return None

    def _coverage(self, scan: WarpScan, fg, fixed_header: ImageHeader) -> None:
        outside = uncovered_voxels(fg, fixed_header, scan.header)
        if outside > self.limits.grid_tolerance_voxels:
            self.problems.append(
                Problem(
                    str(scan.path),
                    f"its grid ({_grid(scan.header)}) does not cover the fixed image of "
                    f"{self.item.name}, {self.item.fixed.description}: the image's foreground "
                    f"reaches {outside:.1f} warp voxels outside it (tolerance "
                    f"{self.limits.grid_tolerance_voxels:g}); the warp belongs to another "
                    "registration (foreign grid)",
                )
            )

    # --- phase 2: what ANTs must do (run by the caller in a child process) --------------------

    def task_id(self, what: str) -> str:
        return f"{self.item.name}: {what}"

    def tasks(self) -> list[AntsTask]:
        """ITK's headers of the warps and the affine on probe points."""
        reg, t = self.reg, self.task_id
        out = [AntsTask(t(f"header {r}"), "header", (str(s.path),)) for r, s in self.scans.items()]
        if self.affine is not None:
            probe = _probe_points(self.affine).tolist()
            for inv in (False, True):
                out.append(
                    AntsTask(t(f"affine {inv}"), "points", (str(reg.affine),), (inv,), probe)
                )
        return out

    # --- phase 3: judge -----------------------------------------------------------------------

    def conclude(self, outcomes: dict[str, TaskOutcome]) -> None:
        """ITK's reading vs ours, the round trip, the images."""
        mine = {
            k.removeprefix(self.task_id("")): v
            for k, v in outcomes.items()
            if k.startswith(self.task_id(""))
        }
        for task_id, out in mine.items():
            if out.status in ("failed", "crashed"):  # a skipped task's cause is reported
                self.problems.append(
                    Problem(self._task_file(task_id), f"ANTs could not use it: {out.message}")
                )
        for role, scan in self.scans.items():
            out = mine.get(f"header {role}")
            if out and out.ok:
                self.problems += _header_problems(scan, out.result)
        if self.affine is not None:
            self._affine_probe(mine)
        mapped = self._mapped()
        if mapped is None:
            return
        if "round trip" in mapped:
            self._round_trip(mapped["round trip"])
        if self.fixed_values is None:
            reason = self.item.fixed_missing if self.item.fixed is None else "see above"
            self.warn(f"Warp/InverseWarp swap and foreign-warp checks not possible: {reason}")
        elif self.affine is not None:
            self._image_check(mapped)

    def _task_file(self, task_id: str) -> str:
        if task_id.startswith("affine"):
            return str(self.reg.affine)
        return str(self.reg.inverse_warp if "InverseWarp" in task_id else self.reg.warp)

    def _affine_probe(self, mine: dict[str, TaskOutcome]) -> None:
        probe = _probe_points(self.affine)
        for inv, want in ((False, self.affine(probe)), (True, self.affine.inverse(probe))):
            out = mine.get(f"affine {inv}")
            if not (out and out.ok):
                continue
            err = float(np.abs(np.asarray(out.result) - want).max())
            if err > self.limits.affine_probe_tolerance_mm:
                self.problems.append(
                    Problem(
                        str(self.reg.affine),
                        f"ANTs maps probe points {err:.3g} mm away from what its parameters say "
                        f"({'inverse' if inv else 'forward'}, y = A (x - c) + t + c)",
                    )
                )

    def _mapped(self) -> dict[str, np.ndarray] | None:
        """Warp(P), InverseWarp(P) and InverseWarp(Warp(P)) through the decoded fields."""
        if not len(self.points) or "InverseWarp" not in self.decoded:
            return None

        def through(role: str, points: np.ndarray) -> np.ndarray:
            return ChainMap((self.decoded[role].step(),)).apply(points)

        out = {"InverseWarp": through("InverseWarp", self.points)}
        if "Warp" in self.decoded:
            out["Warp"] = through("Warp", self.points)
            out["round trip"] = through("InverseWarp", out["Warp"])
        elif self.reg.warp is None:
            out["Warp"] = 2 * self.points - out["InverseWarp"]  # first order: u = -v
        else:
            return None
        return out

    def _round_trip(self, back: np.ndarray) -> None:
        lim = self.limits
        voxel = self.scans["InverseWarp"].voxel_mm
        err = np.linalg.norm(back - self.points, axis=1) / voxel
        q = float(np.quantile(err, lim.round_trip_quantile))
        stats = (
            f"median {np.median(err):.3f}, {lim.round_trip_quantile:.0%} {q:.3f}, max "
            f"{err.max():.3f} voxel ({voxel * 1e3:g} um) over {len(err)} points"
        )
        if q <= lim.round_trip_tolerance_voxels:
            self.facts.append(f"round trip {stats}")
            return
        self.problems.append(
            Problem(
                str(self.reg.warp),
                f"it is not the inverse of {self.reg.inverse_warp}: fixed-image points mapped "
                f"through the Warp then the InverseWarp come back off by {stats} (tolerance "
                f"{lim.round_trip_tolerance_voxels:g} voxel at the {lim.round_trip_quantile:.0%}"
                " quantile)",
            )
        )

    def _image_check(self, mapped: dict[str, np.ndarray]) -> None:
        item, lim, aff = self.item, self.limits, self.affine
        moving = self._load(item.moving, "moving")
        if moving is None:
            reason = item.moving_missing if item.moving is None else "see above"
            self.warn(f"Warp/InverseWarp swap and foreign-warp checks not possible: {reason}")
            return
        samples = {
            "Warp": sample_image(*moving, aff(mapped["Warp"])),
            "InverseWarp": sample_image(*moving, aff(mapped["InverseWarp"])),
            "affine": sample_image(*moving, aff(self.points)),
        }
        del moving
        pairs = [("Warp", "InverseWarp"), ("Warp", "affine"), ("InverseWarp", "affine")]
        sim = rank_similarity(self.fixed_values, samples, pairs, lim.n_bootstrap, self.rng)
        if sim is None:
            self.warn(
                "Warp/InverseWarp swap and foreign-warp checks not possible: no contrast "
                "in the images at the sample points"
            )
            return
        c = sim.corr
        what = (
            f"rank correlation of the fixed image ({item.fixed.description}) with the moving "
            f"image ({item.moving.description}) sampled at Aff(Warp(P)) / Aff(InverseWarp(P)) / "
            f"Aff(P): {c['Warp']:.4f} / {c['InverseWarp']:.4f} / {c['affine']:.4f} over "
            f"{sim.n_points} foreground points P"
        )

        def sig(a: str, b: str) -> int:
            return sim.significant(a, b, lim.similarity_sigmas, lim.similarity_min_difference)

        w_vs_i, w_vs_a, i_vs_a = (
            sig("Warp", "InverseWarp"),
            sig("Warp", "affine"),
            sig("InverseWarp", "affine"),
        )
        if self.reg.warp is None:  # the Warp is the first-order -InverseWarp
            where, these = str(self.reg.inverse_warp), "this InverseWarp (no 1Warp beside it)"
            swapped = "looks like a Warp (its displacements point the wrong way)"
        else:
            where = str(self.reg.warp)
            these = f"this Warp and the InverseWarp {self.reg.inverse_warp}"
            swapped = "look swapped"
        if w_vs_i < 0 and i_vs_a > 0:
            self.problems.append(
                Problem(
                    where,
                    f"{these} {swapped}: the images match best through the InverseWarp, which "
                    f"improves on the affine alone; {what}",
                )
            )
        elif w_vs_a < 0 or w_vs_i < 0:
            self.problems.append(
                Problem(
                    where,
                    f"{these} do not belong to this registration: through the Warp the images "
                    "match worse than through the affine alone (or than through the "
                    f"InverseWarp, which does not improve on the affine); {what}",
                )
            )
        elif w_vs_i == 0 and not self._negligible():
            self.warn(f"cannot tell the Warp from the InverseWarp by image similarity; {what}")
        elif w_vs_i == 0:
            self.facts.append("warps below half a voxel: swapping them would not matter")
        else:
            self.facts.append(
                f"images agree (Warp / InverseWarp / affine alone: {c['Warp']:.3f} / "
                f"{c['InverseWarp']:.3f} / {c['affine']:.3f})"
            )

    def _negligible(self) -> bool:
        """Every displacement is below half a voxel of its grid."""
        return all(s.max_abs_mm < 0.5 * s.voxel_mm for s in self.scans.values())


def _same_grid(warp: WarpScan, inverse: WarpScan) -> list[Problem]:
    a, b = warp.header, inverse.header
    same = (
        a.size == b.size
        and np.allclose(a.origin, b.origin, atol=1e-4)
        and np.allclose(a.spacing, b.spacing, atol=1e-6)
        and np.allclose(a.direction, b.direction, atol=1e-6)
    )
    if same:
        return []
    return [
        Problem(
            str(warp.path),
            f"its grid ({_grid(a)}) differs from that of {inverse.path} ({_grid(b)}); ANTs "
            "writes both on the fixed image's grid, so one of them belongs to another "
            "registration",
        )
    ]


def _grid(h: ImageHeader) -> str:
    return (
        f"size {list(h.size)}, origin {np.round(h.origin, 4).tolist()} mm, "
        f"spacing {np.round(h.spacing, 4).tolist()} mm"
    )


def _probe_points(affine: ItkAffine) -> np.ndarray:
    offsets = np.vstack([np.zeros(3), np.eye(3) * PROBE_OFFSET_MM, -np.eye(3) * PROBE_OFFSET_MM])
    return affine.center + offsets


def _header_problems(scan: WarpScan, itk: dict) -> list[Problem]:
    h = scan.header
    same = (
        tuple(int(n) for n in itk["dimensions"]) == h.size
        and itk["components"] == 3
        and np.allclose(itk["origin"], h.origin, atol=HEADER_ATOL_MM)
        and np.allclose(itk["spacing"], h.spacing, atol=HEADER_ATOL_MM)
        and np.allclose(np.asarray(itk["direction"]), h.direction, atol=1e-3)
    )
    if same:
        return []
    return [
        Problem(
            str(scan.path),
            f"ITK reads its header as {itk} but the NIfTI header says {h.to_json()}: "
            "ambiguous geometry (qform vs sform, units)",
        )
    ]
