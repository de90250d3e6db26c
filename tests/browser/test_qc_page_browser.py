"""The QC page in a real headless Chromium: every image loads, nothing is logged, it fits.

How the check works: the product page has no script, so each check copies ``index.html`` to a
sibling file of the same ``qc/`` folder (same relative image names) with a test-only ``<head>``
prefix: a Content-Security-Policy that allows only same-folder images, inline style and that
inline script, and a script that, on window load, writes what it measured into
``document.title`` as JSON (images loaded / broken, image error events, overflowing images,
viewport and page sizes). ``chromium --headless --dump-dom`` prints the DOM after the load event,
and the title is parsed back. ``--enable-logging=stderr --v=0`` makes Chromium print every
console message of the page (CSP violations, script errors) as a ``CONSOLE`` line on stderr; a
page without script must produce none. A screenshot of the product page itself is kept in the
test's ``tmp_path`` (path logged and recorded as the ``screenshot`` property).

Negative controls keep the checks honest: a deleted PNG must be reported broken, and an external
image must be reported broken with a CONSOLE line.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from alignprep.qc.page import PageFigure, PageItem, render_page, write_page
from alignprep.qc.render import PICK_RGB, new_figure, png_bytes

pytestmark = pytest.mark.browser

log = logging.getLogger(__name__)

#: Flags of every Chromium run (the URL and the action flag come after them).
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",  # root in CI containers
    "--allow-file-access-from-files",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)

#: The test-only prefix of ``<head>``: a strict CSP and the measuring script.
PROBE = """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self';
 style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<script>
const errors = [];
window.addEventListener("error", (e) => {
  const t = e.target;
  errors.push(t && t.getAttribute ? "resource " + t.getAttribute("src") : "script " + e.message);
}, true);
window.addEventListener("load", () => {
  const root = document.documentElement;
  const images = Array.from(document.images);
  const ok = (i) => i.complete && i.naturalWidth > 0;
  document.title = JSON.stringify({
    n: images.length,
    loaded: images.filter(ok).map((i) => i.getAttribute("src")),
    broken: images.filter((i) => !ok(i)).map((i) => i.getAttribute("src")),
    overflow: images.filter((i) => i.getBoundingClientRect().right > root.clientWidth + 0.5)
      .map((i) => i.getAttribute("src")),
    errors: errors,
    viewport: root.clientWidth,
    scroll_width: root.scrollWidth,
    height: root.scrollHeight,
  });
});
</script>
"""


def _figure_png(kind: str, width_in: float, height_in: float, seed: int) -> bytes:
    """A small but realistic QC picture: a grey slice with a magenta track, or a depth plot."""
    rng = np.random.default_rng(seed)
    fig = new_figure(width_in, height_in)
    if kind == "slice":
        ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
        yy, xx = np.mgrid[-1:1:160j, -1:1:220j]
        brain = np.exp(-(xx**2 / 0.6 + yy**2 / 0.35)) + 0.05 * rng.standard_normal(xx.shape)
        ax.imshow(brain, cmap="gray")
        ax.plot([60, 150], [20, 130], color=PICK_RGB, lw=2)
        ax.set_axis_off()
    else:
        ax = fig.add_axes((0.25, 0.08, 0.7, 0.86))
        depth = np.linspace(0, 3840, 96)
        ax.plot(rng.standard_normal(96).cumsum(), depth, color="0.2")
        ax.invert_yaxis()
        ax.set_ylabel("depth along the track (µm)")
    return png_bytes(fig)


FIGURES = (
    PageFigure("registration_centre.png", "Centre slices", "Registration", "Template over SPIM"),
    PageFigure("registration_edges.png", "Edges", "Registration", "Magenta: template edges"),
    PageFigure("tracks_histology.png", "Tracks on the SPIM", "Tracks on histology"),
    PageFigure("tracks_atlas.png", "Tracks in the CCF", "Tracks in the atlas", "Allen CCF 25 µm"),
    PageFigure("probe_ProbeA.png", "ProbeA along the track", "Probes", "Regions and units"),
    PageFigure("probe_ProbeB shank1.png", "ProbeB shank 1", "Probes", "A name with a space"),
)
SIZES = {"Registration": (9, 4.5), "Tracks on histology": (7, 5), "Tracks in the atlas": (7, 5)}


def _regions(shank: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shank": [shank] * 4,
            "acronym": ["MOp5", "VISa4", "MOp6a", "CA1"],
            "allen_id": [648, 312782558, 844, 382],
            "lateralized_id": [-648, -312782558, -844, -382],
            "axial_start_um": [0.0, 80.0, 180.0, 360.0],
            "axial_end_um": [60.0, 160.0, 340.0, 460.0],
            "n_channels": [8, 10, 18, 12],
            "n_beyond_track": [0, 0, 0, 0],
            "n_units": [2, 0, 2, 2],
            "n_good_units": [0, 0, 1, 0],
        }
    )


@pytest.fixture
def qc_page(tmp_path: Path) -> Path:
    """A QC folder with real PNGs and its ``index.html``; returns the page's path."""
    qc = tmp_path / "qc"
    qc.mkdir()
    for i, fig in enumerate(FIGURES):
        kind = "slice" if fig.section != "Probes" else "depth"
        width, height = SIZES.get(fig.section, (4, 7))
        (qc / fig.file).write_bytes(_figure_png(kind, width, height, seed=i))
    items = [
        PageItem("histology 000123", "ok", seconds=48.2),
        PageItem("ccf ProbeA", "ok", seconds=3.1),
        PageItem("ephys ProbeB <script>x</script>", "failed", "spike sorting <b>missing</b>", 0.4),
        PageItem("channels ProbeC", "skipped", "no histology track for ProbeC"),
        PageItem("qc 000123", "ok", seconds=75.0),
    ]
    tables = {"ProbeA": _regions(1), "ProbeB shank 1": _regions(1), "ProbeB shank 2": _regions(2)}
    page = render_page("000123", FIGURES, items, tables, notes=["synthetic page of the tests"])
    return write_page(qc, page)


def _chromium(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with its own profile (nothing under ``$HOME``)."""
    profile = tmp / "chromium-profile"
    env = {**os.environ, "XDG_CONFIG_HOME": str(profile), "XDG_CACHE_HOME": str(profile)}
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _console(stderr: str) -> list[str]:
    """The page's console messages in Chromium's stderr log."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def measure(
    chromium: str, page: Path, tmp: Path, width: int = 1400, edit: str = ""
) -> tuple[dict, list[str]]:
    """Open a measuring copy of ``page`` (``edit`` added to its body) and return what it saw.

    Returns the measurement of the load event (see :data:`PROBE`) and the console lines.
    """
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()  # the product page itself has none
    copy = page.with_name("browser-check.html")
    probed = text.replace("<head>", "<head>\n" + PROBE, 1).replace("</main>", edit + "</main>", 1)
    copy.write_text(probed, encoding="utf-8")
    try:
        proc = _chromium(chromium, tmp, f"--window-size={width},1000", "--dump-dom", copy.as_uri())
    finally:
        copy.unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    title = re.search(r"<title>(.*?)</title>", proc.stdout, re.S)
    assert title, f"no title in the dumped DOM: {proc.stdout[:500]}"
    return json.loads(html.unescape(title.group(1))), _console(proc.stderr)


def test_every_image_loads_without_console_messages(
    chromium: str, qc_page: Path, tmp_path: Path, record_property: pytest.RecordProperty
):
    seen, console = measure(chromium, qc_page, tmp_path)
    assert seen["n"] == len(FIGURES), seen
    assert seen["broken"] == [] and seen["errors"] == [], seen
    assert len(seen["loaded"]) == len(FIGURES)
    assert console == [], console
    assert seen["overflow"] == [] and seen["scroll_width"] <= seen["viewport"], seen
    # every image's full-size link points to a file of the same folder
    for fig in FIGURES:
        assert (qc_page.parent / fig.file).is_file()

    shot = tmp_path / "qc_page_screenshot.png"
    height = min(max(seen["height"], 800), 16000)  # the whole page
    proc = _chromium(
        chromium,
        tmp_path,
        f"--window-size=1400,{height}",
        f"--screenshot={shot}",
        qc_page.as_uri(),
    )
    record_property("screenshot", str(shot))
    log.info("QC page screenshot: %s", shot)
    assert proc.returncode == 0 and shot.is_file(), f"no screenshot {shot}: {proc.stderr[-2000:]}"
    pixels = imread(shot)
    assert pixels.shape[:2] == (height, 1400), f"screenshot {shot}: {pixels.shape}"
    assert float(pixels[..., :3].std()) > 0.05, f"screenshot {shot} looks blank"


def test_images_fit_a_narrow_window(chromium: str, qc_page: Path, tmp_path: Path):
    seen, console = measure(chromium, qc_page, tmp_path, width=600)
    assert seen["viewport"] == 600, seen
    assert seen["broken"] == [] and console == [], (seen, console)
    assert seen["overflow"] == [], f"images wider than a 600 px window: {seen['overflow']}"
    assert seen["scroll_width"] <= seen["viewport"], seen  # no sideways scrolling of the page


def test_negative_control_a_deleted_png_is_reported_broken(
    chromium: str, qc_page: Path, tmp_path: Path
):
    gone = FIGURES[2].file
    (qc_page.parent / gone).unlink()
    seen, _ = measure(chromium, qc_page, tmp_path)
    assert seen["n"] == len(FIGURES)
    assert seen["broken"] == [gone], seen
    assert seen["errors"] == [f"resource {gone}"], seen


def test_negative_control_an_external_image_is_blocked_and_logged(
    chromium: str, qc_page: Path, tmp_path: Path
):
    external = '<img src="https://example.invalid/x.png" alt="external">'
    seen, console = measure(chromium, qc_page, tmp_path, edit=external)
    assert seen["broken"] == ["https://example.invalid/x.png"], seen
    assert any("example.invalid" in line for line in console), console
