"""ANTs chain semantics: list order, invert flags and the registration duality (coordinates.md §5).

Independent truth: numpy algebra of synthetic affines and trilinearly interpolated displacement
fields (``alignprep.synthetic.geometry``), compared with what ``ants.apply_transforms_to_points``
does with the files written to disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.space.frames import direction_from_code
from alignprep.space.transforms import (
    Chain,
    Registration,
    ccf_to_individual,
    fixed_to_moving_points,
    individual_to_ccf,
    individual_to_template,
    moving_to_fixed_points,
    sha256,
)
from alignprep.synthetic.geometry import (
    Affine,
    SyntheticRegistration,
    box_header,
    invert_field,
    random_affine,
    smooth_field,
)

from ..ants_reference import apply_to_points

UM = 1e-3  # mm


# ----------------------------------------------------------------------------- list order


@pytest.fixture(scope="module")
def simple_mats(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("mats")
    shift = Affine(np.eye(3), np.zeros(3), np.array([10.0, 0.0, 0.0])).write(d / "shift.mat")
    scale = Affine(np.diag([2.0, 1.0, 1.0]), np.zeros(3), np.zeros(3)).write(d / "scale.mat")
    return shift, scale


def test_list_order_element0_first(simple_mats):
    shift, scale = simple_mats
    out = apply_to_points(Chain((shift, scale), (False, False)), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(out, [[22.0, 0.0, 0.0]], atol=1e-9)  # (1 + 10) * 2
    out = apply_to_points(Chain((scale, shift), (False, False)), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(out, [[12.0, 0.0, 0.0]], atol=1e-9)  # 1 * 2 + 10


def test_invert_flag_inverts_affine(simple_mats):
    shift, scale = simple_mats
    out = apply_to_points(Chain((shift,), (True,)), [[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(out, [[-9.0, 2.0, 3.0]], atol=1e-9)
    out = apply_to_points(Chain((shift, scale), (True, True)), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(out, [[-4.5, 0.0, 0.0]], atol=1e-9)  # (1 - 10) / 2


def test_affine_with_centre_matches_numpy(tmp_path: Path):
    rng = np.random.default_rng(0)
    aff = random_affine(rng, np.array([1.0, -2.0, 3.0]), np.array([4.0, 0.5, -1.0]), 15, (0.8, 1.2))
    path = aff.write(tmp_path / "a.mat")
    pts = rng.uniform(-5, 5, (50, 3))
    # hand-written ITK affine: A (x - c) + c + t. ANTs stores and reads the parameters in single
    # precision, hence nanometre (1e-6 mm) agreement only.
    want = (pts - aff.center) @ aff.matrix.T + aff.center + aff.translation
    got = apply_to_points(Chain((path,), (False,)), pts)
    np.testing.assert_allclose(got, want, rtol=0, atol=0.01 * UM)
    back = np.linalg.solve(aff.matrix, (pts - aff.center - aff.translation).T).T + aff.center
    got = apply_to_points(Chain((path,), (True,)), pts)
    np.testing.assert_allclose(got, back, rtol=0, atol=0.01 * UM)


def test_chain_needs_one_flag_per_file(simple_mats):
    with pytest.raises(ValueError):
        Chain(simple_mats, (False,))
    chain = Chain((simple_mats[0],), (True,)) + Chain((simple_mats[1],), (False,))
    assert chain.files == simple_mats
    assert chain.invert == (True, False)


# ----------------------------------------------------------------------------- registrations


def _registration(
    rng: np.random.Generator,
    fixed_center: np.ndarray,
    moving_center: np.ndarray,
    amplitude_mm: float,
    code: str,
) -> SyntheticRegistration:
    """A registration of moving onto fixed: field on a box around the fixed centre."""
    c = np.asarray(fixed_center, float)
    hdr = box_header(c - 3.0, c + 3.0, 0.15, direction_from_code(code))
    warp = smooth_field(rng, hdr, amplitude_mm, 1.0, taper_mm=1.0)
    aff = random_affine(rng, c, np.asarray(moving_center, float), 10.0, (0.9, 1.1))
    return SyntheticRegistration(aff, warp, invert_field(warp))


@pytest.fixture(scope="module")
def regs(tmp_path_factory):
    """ls: individual (moving) onto template (fixed); t2c: template (moving) onto CCF (fixed)."""
    d = tmp_path_factory.mktemp("regs")
    rng = np.random.default_rng(42)
    ccf_c = np.array([-5.7, 5.4, -3.0])
    tpl_c = np.array([1.0, -2.0, 0.5])
    ind_c = np.array([12.0, 3.0, 4.0])
    t2c = _registration(rng, ccf_c, tpl_c, 0.05, "PIR")
    ls = _registration(rng, tpl_c, ind_c, 0.05, "RAS")
    t2c.write(d / "t2c" / "syn_")
    ls.write(d / "ls" / "ls_to_template_SyN_")
    zero = _registration(rng, tpl_c, ind_c, 0.0, "LPS")
    zero.write(d / "zero" / "z_")
    return {
        "ls": ls,
        "t2c": t2c,
        "zero": zero,
        "ls_files": Registration.from_prefix(d / "ls" / "ls_to_template_SyN_"),
        "t2c_files": Registration.from_prefix(d / "t2c" / "syn_"),
        "zero_files": Registration.from_prefix(d / "zero" / "z_"),
        "ccf_c": ccf_c,
        "tpl_c": tpl_c,
    }


def test_synthetic_fields_are_not_trivial(regs):
    pts = regs["tpl_c"] + np.random.default_rng(1).uniform(-1.5, 1.5, (200, 3))
    assert np.abs(regs["ls"].warp(pts)).max() > 0.02  # tens of micrometres of warp


def test_moving_to_fixed_inverts_fixed_to_moving(regs):
    x = regs["tpl_c"] + np.random.default_rng(2).uniform(-1.5, 1.5, (300, 3))
    y = regs["ls"].fixed_to_moving(x)
    chain = moving_to_fixed_points(regs["ls_files"])
    assert chain.files == (regs["ls_files"].affine, regs["ls_files"].inverse_warp)
    assert chain.invert == (True, False)
    np.testing.assert_allclose(apply_to_points(chain, y), x, rtol=0, atol=1 * UM)


def test_fixed_to_moving_chain_equals_numpy(regs):
    x = regs["tpl_c"] + np.random.default_rng(3).uniform(-1.5, 1.5, (300, 3))
    chain = fixed_to_moving_points(regs["ls_files"])
    assert chain.files == (regs["ls_files"].warp, regs["ls_files"].affine)
    assert chain.invert == (False, False)
    np.testing.assert_allclose(
        apply_to_points(chain, x), regs["ls"].fixed_to_moving(x), rtol=0, atol=0.01 * UM
    )


def test_zero_field_round_trip_exact(regs):
    x = regs["tpl_c"] + np.random.default_rng(4).uniform(-2, 2, (300, 3))
    y = regs["zero"].fixed_to_moving(x)
    np.testing.assert_allclose(y, regs["zero"].affine(x), atol=1e-12)  # the field is zero
    back = apply_to_points(moving_to_fixed_points(regs["zero_files"]), y)
    np.testing.assert_allclose(back, x, rtol=0, atol=0.01 * UM)
    fwd = apply_to_points(fixed_to_moving_points(regs["zero_files"]), x)
    np.testing.assert_allclose(fwd, y, rtol=0, atol=0.01 * UM)


def test_invert_flags_matter(regs):
    x = regs["tpl_c"] + np.random.default_rng(5).uniform(-1.5, 1.5, (100, 3))
    y = regs["ls"].fixed_to_moving(x)
    files = moving_to_fixed_points(regs["ls_files"]).files
    wrong = apply_to_points(Chain(files, (False, False)), y)
    assert np.linalg.norm(wrong - x, axis=1).min() > 100 * UM


def test_individual_to_template_is_moving_to_fixed(regs):
    chain = individual_to_template(regs["ls_files"])
    assert chain == moving_to_fixed_points(regs["ls_files"])


def test_individual_to_ccf_composition_and_truth(regs):
    ls_f, t2c_f = regs["ls_files"], regs["t2c_files"]
    chain = individual_to_ccf(ls_f, t2c_f)
    # the spec's list (coordinates.md §5): ls_Aff, ls_InvWarp, t2c_Aff, t2c_InvWarp, [T, F, T, F]
    assert chain.files == (ls_f.affine, ls_f.inverse_warp, t2c_f.affine, t2c_f.inverse_warp)
    assert chain.invert == (True, False, True, False)
    x_ccf = regs["ccf_c"] + np.random.default_rng(6).uniform(-1.2, 1.2, (200, 3))
    x_tpl = regs["t2c"].fixed_to_moving(x_ccf)
    x_ind = regs["ls"].fixed_to_moving(x_tpl)
    got = apply_to_points(chain, x_ind)
    two_step = apply_to_points(
        moving_to_fixed_points(t2c_f), apply_to_points(individual_to_template(ls_f), x_ind)
    )
    np.testing.assert_allclose(got, two_step, rtol=0, atol=0.01 * UM)
    np.testing.assert_allclose(
        apply_to_points(individual_to_template(ls_f), x_ind), x_tpl, rtol=0, atol=1 * UM
    )
    np.testing.assert_allclose(got, x_ccf, rtol=0, atol=2 * UM)
    # swapping the two registrations is grossly wrong
    swapped = apply_to_points(
        individual_to_ccf(t2c_f, ls_f), x_ind
    )  # t2c first, then ls: wrong order
    assert np.linalg.norm(swapped - x_ccf, axis=1).min() > 100 * UM


def test_ccf_to_individual_equals_numpy(regs):
    ls_f, t2c_f = regs["ls_files"], regs["t2c_files"]
    chain = ccf_to_individual(ls_f, t2c_f)
    assert chain.files == (t2c_f.warp, t2c_f.affine, ls_f.warp, ls_f.affine)
    assert chain.invert == (False, False, False, False)
    x_ccf = regs["ccf_c"] + np.random.default_rng(7).uniform(-1.2, 1.2, (200, 3))
    want = regs["ls"].fixed_to_moving(regs["t2c"].fixed_to_moving(x_ccf))
    np.testing.assert_allclose(apply_to_points(chain, x_ccf), want, rtol=0, atol=0.01 * UM)


# ----------------------------------------------------------------------------- files


def test_from_prefix_missing_files_named(tmp_path: Path):
    prefix = tmp_path / "reg" / "ls_to_template_SyN_"
    prefix.parent.mkdir()
    with pytest.raises(InputError) as err:
        Registration.from_prefix(prefix)
    assert "ls_to_template_SyN_0GenericAffine.mat" in str(err.value)
    assert "ls_to_template_SyN_1InverseWarp.nii.gz" in str(err.value)
    assert err.value.file == str(prefix.parent)
    Path(f"{prefix}0GenericAffine.mat").write_bytes(b"x")
    with pytest.raises(InputError) as err:
        Registration.from_prefix(prefix)
    assert "1InverseWarp.nii.gz" in str(err.value)
    assert "0GenericAffine.mat" not in str(err.value)
    Path(f"{prefix}1InverseWarp.nii.gz").write_bytes(b"y")
    reg = Registration.from_prefix(prefix)
    assert reg.warp is None
    assert reg.files() == (reg.affine, reg.inverse_warp)
    with pytest.raises(InputError, match=r"1Warp\.nii\.gz"):
        Registration.from_prefix(prefix, require_warp=True)
    with pytest.raises(InputError, match="1Warp"):
        fixed_to_moving_points(reg)
    Path(f"{prefix}1Warp.nii.gz").write_bytes(b"z")
    reg = Registration.from_prefix(prefix, require_warp=True)
    assert reg.warp == Path(f"{prefix}1Warp.nii.gz")
    assert len(reg.files()) == 3


def test_sha256_equals_hashlib(tmp_path: Path, regs):
    data = np.random.default_rng(8).bytes(3 * (1 << 20) + 17)  # spans several chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256(path) == hashlib.sha256(data).hexdigest()
    assert sha256(path, chunk_bytes=1000) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256(empty) == hashlib.sha256(b"").hexdigest()
    mat = regs["ls_files"].affine
    assert sha256(mat) == hashlib.sha256(mat.read_bytes()).hexdigest()
