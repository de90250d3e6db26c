"""A synthetic dataset is reused only when the same code built it from the same spec, complete."""

from __future__ import annotations

from dataclasses import replace

from alignprep.synthetic import BUILT_NAME, SyntheticSpec, build_or_reuse, open_dataset

SPEC = SyntheticSpec(content_level=None).affine_only()


def _mtimes(root):
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_reused_only_when_complete_and_built_from_the_same_spec(tmp_path):
    root = tmp_path / "ds"
    first, reused = build_or_reuse(root, SPEC)
    assert not reused and first == open_dataset(root)
    stamps = _mtimes(root)
    again, reused = build_or_reuse(root, SPEC)
    assert reused and again == first and _mtimes(root) == stamps  # nothing rewritten
    other, reused = build_or_reuse(root, replace(SPEC, seed=3))
    assert not reused and other.truth["spec"]["seed"] == 3
    (root / BUILT_NAME).unlink()  # as a build killed before its end leaves it
    (root / "data" / "stale.txt").write_text("left by the killed build")
    rebuilt, reused = build_or_reuse(root, replace(SPEC, seed=3))
    assert not reused and rebuilt == other and not (root / "data" / "stale.txt").exists()
