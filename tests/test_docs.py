"""The README and docs/ are true on a fresh clone.

* Every link in ``README.md`` and ``docs/**/*.md`` is relative, stays inside the repository,
  resolves to a file or folder of it, and its ``#anchor`` (if any) is a heading of the target.
* Every ``code/...`` or ``tests/...`` path written in backticks exists.
* The worked examples of ``docs/coordinates.md`` are recomputed with the code (the doc follows
  the code; the code is tested against ground truth elsewhere).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from .conftest import REPO_ROOT

DOCS = sorted((REPO_ROOT / "docs").rglob("*.md"))
PAGES = [REPO_ROOT / "README.md", *DOCS]
COORDINATES = REPO_ROOT / "docs" / "coordinates.md"

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
INLINE_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
REPO_PATH = re.compile(r"^(?:code|tests)/")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO_ROOT)) for p in paths]


def _prose(text: str) -> str:
    """The text without fenced code blocks (their lines are not links or headings)."""
    return FENCE.sub("", text)


def links(text: str) -> list[str]:
    """Targets of inline, image and reference links outside code."""
    prose = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), _prose(text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (repeated headings get -1, -2, ...)."""
    seen: Counter[str] = Counter()
    out = set()
    for _, title in HEADING.findall(_prose(path.read_text(encoding="utf-8"))):
        base = slug(title)
        out.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return out


def test_slug_matches_github_on_known_headings():
    assert slug("6. How the GUIs load a results folder") == "6-how-the-guis-load-a-results-folder"
    assert slug("Code map") == "code-map"
    assert slug("`image_space_histology/`") == "image_space_histology"
    assert (
        slug("2. F1 → F2: native SPIM physical (LPS mm)") == "2-f1--f2-native-spim-physical-lps-mm"
    )


def test_link_parser_finds_links_and_skips_code():
    text = "a [x](a.md#b) `[no](c.md)` ![i](img.png)\n```\n[no](d.md)\n```\n[r]: e.md\n"
    assert links(text) == ["a.md#b", "img.png", "e.md"]


def test_docs_exist_and_readme_links_every_page():
    assert {"inputs.md", "outputs.md", "coordinates.md", "checks.md"} <= {p.name for p in DOCS}
    readme_targets = {t.split("#")[0] for t in links((REPO_ROOT / "README.md").read_text())}
    for page in DOCS:
        assert str(page.relative_to(REPO_ROOT)) in readme_targets, f"README does not link {page}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_links_resolve_inside_the_repository(page: Path):
    root = REPO_ROOT.resolve()
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if not target:
            problems.append("empty link target")
            continue
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith(("/", "\\")):
            problems.append(f"{target}: not a relative link (it points outside the repository)")
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page.resolve()
        if not dest.is_relative_to(root):
            problems.append(f"{target}: leads outside the repository ({dest})")
        elif not dest.exists():
            problems.append(f"{target}: {dest.relative_to(root)} does not exist")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            problems.append(f"{target}: no heading #{anchor} in {dest.relative_to(root)}")
    assert not problems, f"{page.relative_to(REPO_ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_repository_paths_in_backticks_exist(page: Path):
    missing = []
    for _, span in CODE_SPAN.findall(_prose(page.read_text(encoding="utf-8"))):
        for token in span.split():
            token = token.rstrip(".,;:)")
            if not REPO_PATH.match(token):
                continue
            if any(c in token for c in "*?["):
                found = list(REPO_ROOT.glob(token))
            else:
                found = [REPO_ROOT / token] if (REPO_ROOT / token).exists() else []
            if not found:
                missing.append(token)
    assert not missing, f"{page.relative_to(REPO_ROOT)} names missing paths: {missing}"


# --- the worked examples of docs/coordinates.md, recomputed ----------------------------------


def fmt(values) -> str:
    """``(a, b, c)`` as the doc writes it: 6 decimals at most, no trailing zeros."""
    return "(" + ", ".join(f"{round(float(v), 6):g}" for v in np.ravel(values)) + ")"


@pytest.fixture(scope="module")
def coordinates_text() -> str:
    return " ".join(COORDINATES.read_text(encoding="utf-8").split())  # lines unwrapped


S0_MM = np.array([0.0018, 0.0018, 0.002])
SIZE0 = (10240, 7392, 3952)


def _pick_index(origin: str) -> np.ndarray:
    from alignprep.inputs.ng_tracks import to_level0_index, track_points

    dims = {"z": [2e-6, "m"], "y": [1.8e-6, "m"], "x": [1.8e-6, "m"], "t": [0.001, "s"]}
    points = [[2000, 3000, 5000, 0], [2500, 3000, 5000, 0]]
    layer = {"type": "annotation", "name": "track", "source": "local://annotations"}
    layer["annotations"] = [{"type": "point", "point": p} for p in points]
    state = {"dimensions": dims, "layers": [layer]}
    picks = track_points(state, "track", Path("state.json"))
    return to_level0_index(picks, [2.0, 1.8, 1.8], origin)[0]  # type: ignore[arg-type]


def test_example_neuroglancer_to_native(coordinates_text: str):
    from alignprep.space.frames import level_index, lps_mm_to_ras_um, native_header

    center, corner = _pick_index("center"), _pick_index("corner")
    header0 = native_header("RPI", S0_MM, SIZE0)
    f2 = header0.index_to_physical(center)
    assert f"F1 = **{fmt(center)}** with `center`" in coordinates_text
    assert f"**{fmt(corner)}** with `corner`" in coordinates_text
    assert f"F2 = **{fmt(f2)}** mm" in coordinates_text
    assert f"`corner`: {fmt(header0.index_to_physical(corner))} mm" in coordinates_text
    assert f"F4 = **{fmt(lps_mm_to_ras_um(f2))}** µm" in coordinates_text
    assert f"gives D = {header0.direction.astype(int).tolist()}" in coordinates_text
    header4 = native_header("RPI", S0_MM * 16, (640, 462, 247), S0_MM)
    index4 = level_index(center, S0_MM, S0_MM * 16)
    assert f"o_4 = **{fmt(header4.origin)}** mm" in coordinates_text
    assert f"level-4 index {fmt(index4)}" in coordinates_text
    np.testing.assert_allclose(header4.index_to_physical(index4), f2, atol=1e-12)


def test_example_pipeline_frame(coordinates_text: str):
    from alignprep.space.frames import native_header
    from alignprep.space.pipeline_frame import pipeline_frame

    frame = pipeline_frame(
        native_header("RPI", S0_MM * 8, (1280, 924, 494), S0_MM), SIZE0, "0.0.25"
    )
    f3 = frame.header0.index_to_physical(_pick_index("center"))
    assert f"o_P0 = **{fmt(frame.header0.origin)}** mm" in coordinates_text
    assert f"s_P0 = {fmt(frame.header0.spacing)} mm" in coordinates_text
    assert f"F3 = **{fmt(f3)}** mm" in coordinates_text


def test_example_ants_chain(tmp_path: Path, coordinates_text: str):
    from alignprep.space.transforms import (
        Registration,
        individual_to_ccf,
        individual_to_template,
    )
    from alignprep.synthetic.geometry import Affine, Field, box_header

    from .ants_reference import apply_to_points

    grid = box_header(np.full(3, -30.0), np.full(3, 30.0), 5.0, np.eye(3))
    zero = Field(grid, np.zeros((*grid.size, 3)))
    Affine(np.eye(3), np.zeros(3), np.array([1.0, 0, 0])).write(tmp_path / "ls_0GenericAffine.mat")
    Affine(np.diag([1.0, 1, 2]), np.zeros(3), np.array([0, 2.0, 0])).write(
        tmp_path / "t2c_0GenericAffine.mat"
    )
    for prefix in ("ls_", "t2c_"):
        zero.write(tmp_path / f"{prefix}1InverseWarp.nii.gz")
    ls = Registration.from_prefix(tmp_path / "ls_")
    t2c = Registration.from_prefix(tmp_path / "t2c_")
    point = [[3.0, 4.0, 5.0]]
    template = apply_to_points(individual_to_template(ls), point)
    ccf = apply_to_points(individual_to_ccf(ls, t2c), point)
    assert f"template at **{fmt(template)}** and to the CCF at **{fmt(ccf)}**" in coordinates_text


def test_example_ccf_to_bregma(coordinates_text: str):
    from alignprep.space import atlas

    ccf = np.array([[-5.2, 6.6, -3.9]])
    f7, f8 = atlas.ccf_lps_mm_to_ccf_um(ccf), atlas.ccf_lps_mm_to_bregma_um(ccf)
    assert f"F7 = **{fmt(f7)}** µm → F8 = **{fmt(f8)}** µm" in coordinates_text
    assert f"gives F8 = **{fmt(atlas.ccf_um_to_bregma_um([[5739, 5400, 332]]))}**" in (
        coordinates_text
    )
    assert "[5739, 5400, 332]" in coordinates_text
    assert atlas.BREGMA_MLAPDV_UM.tolist() == [5739, 5400, 332]


def test_example_output_grid(coordinates_text: str):
    from alignprep.space.frames import ImageHeader, native_header, reorient
    from alignprep.space.pipeline_frame import pipeline_frame
    from alignprep.space.resample import output_size

    s4, size4 = S0_MM * 16, (640, 462, 247)
    level4 = native_header("RPI", s4, size4, S0_MM)
    size_g = output_size(size4, s4, 0.03)
    grid, _ = reorient(
        ImageHeader(level4.origin, np.full(3, 0.03), level4.direction, size_g), "IRP"
    )
    frame = pipeline_frame(
        native_header("RPI", S0_MM * 8, (1280, 924, 494), S0_MM), SIZE0, "0.0.25"
    )
    pipe4 = frame.header_at(4, size4)
    pipe_g = ImageHeader(pipe4.origin, pipe4.spacing * (0.03 / s4), pipe4.direction, size_g)
    pipe_irp, _ = reorient(pipe_g, "IRP")
    assert f"G at 30 µm is {fmt(size_g)}, after IRP **{fmt(grid.size)}**" in coordinates_text
    assert f"(ITK order; numpy shape {fmt(grid.shape_zyx)})" in coordinates_text
    assert f"with origin **{fmt(grid.origin)}** mm" in coordinates_text
    assert f"has origin **{fmt(pipe_irp.origin)}** mm" in coordinates_text
    row_major = ", ".join(f"{v:g}" for v in grid.direction.reshape(9))
    assert f"Row-major D = `[{row_major}]`" in coordinates_text
    assert pipe_irp.size == grid.size and np.array_equal(pipe_irp.direction, grid.direction)
