"""The QC page (``alignprep.qc.page``): content, escaping, self-containment, determinism."""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from alignprep.qc.page import PAGE_NAME, PageFigure, PageItem, render_page, write_page

EVIL = "<script>alert('x')</script>"

#: Elements without an end tag in HTML5.
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


def regions_table(shank: int) -> pd.DataFrame:
    """A region-along-track table shaped like ``histology_track_regions_shank<N>.csv``."""
    return pd.DataFrame(
        {
            "shank": [shank, shank],
            "acronym": ["ProS", "DG-mo"],
            "allen_id": [484682470, 10703],
            "lateralized_id": [484682470, 10703],
            "axial_start_um": [0.0, 15.0],
            "axial_end_um": [0.0, 75.5],
            "n_channels": [2, 10],
            "n_beyond_track": [0, 0],
            "n_units": [0, 3],
            "n_good_units": [0, 0],
        }
    )


def sample() -> dict:
    """Inputs of a page: sections interleaved, a failed and a skipped item, hostile strings."""
    return {
        "mouse_id": "000123",
        "figures": [
            PageFigure("registration_centre.png", "Registration, centre slices", "Registration"),
            PageFigure("probes_ProbeA.png", "ProbeA channels", "Probes", "Channels along ProbeA"),
            PageFigure(
                "registration_edges.png", f"Edges {EVIL}", "Registration", f"caption {EVIL}"
            ),
            PageFigure("tracks_histology.png", "Tracks, histology", "Tracks on histology"),
            PageFigure("tracks_atlas.png", "Tracks, atlas", "Tracks in the atlas"),
        ],
        "items": [
            PageItem("histology", "ok", seconds=12.34),
            PageItem(f"probe {EVIL}", "skipped", "no spike sorting"),
            PageItem("ccf ProbeB", "failed", f"transform broke: {EVIL}", 3.0),
            PageItem("channels ProbeA", "ok", seconds=75.0),
        ],
        "region_tables": {"ProbeA": regions_table(1), "ProbeB shank 2": regions_table(2)},
        "notes": ["run of 2025-01-15"],
    }


class _Page(HTMLParser):
    """The parts of a page the tests look at, and a check that every element is closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.hrefs: list[str] = []
        self.h2: list[str] = []
        self.h3: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (class, cell texts) of every <tr>
        self.cells: list[str] = []
        self.text: list[str] = []
        self._capture: str | None = None
        self._buf: list[str] = []
        self._row_class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "img":
            self.imgs.append(a)
        if tag == "a":
            self.hrefs.append(a.get("href") or "")
        if tag == "tr":
            self._row_class, self.cells = a.get("class") or "", []
        if tag in ("h2", "h3", "td", "th"):
            self._capture, self._buf = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == self._capture:
            text = "".join(self._buf)
            {"h2": self.h2, "h3": self.h3}.get(tag, self.cells).append(text)
            self._capture = None
        if tag == "tr":
            self.rows.append((self._row_class, self.cells))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._capture:
            self._buf.append(data)


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors
    assert not parser.stack, f"unclosed elements: {parser.stack}"
    return parser


def test_every_figure_appears_once_with_its_src_alt_and_full_size_link():
    inputs = sample()
    page = parse(render_page(**inputs))
    srcs = Counter(img["src"] for img in page.imgs)
    assert srcs == Counter(f.file for f in inputs["figures"])  # each exactly once, nothing else
    for fig in inputs["figures"]:
        (img,) = [i for i in page.imgs if i["src"] == fig.file]
        assert img["alt"] == fig.title  # the unescaped title, so the escaping round-trips
        assert fig.file in page.hrefs  # the link to the full-size file
        assert fig.title in page.h3
    caption = "".join(page.text)
    assert "Channels along ProbeA" in caption and f"caption {EVIL}" in caption


def test_figures_are_grouped_by_section_in_first_seen_order():
    inputs = sample()
    html = render_page(**inputs)
    page = parse(html)
    assert page.h2 == [
        "Run summary",
        "Registration",
        "Probes",
        "Tracks on histology",
        "Tracks in the atlas",
        "Regions along the tracks",
    ]
    # both Registration figures sit in the Registration section, in their given order
    registration = html.split("<h2>Registration</h2>")[1].split("<h2>")[0]
    assert registration.index("registration_centre.png") < registration.index(
        "registration_edges.png"
    )
    assert "probes_ProbeA.png" not in registration


def test_strings_from_data_are_escaped():
    inputs = sample()
    inputs["mouse_id"] = f"m{EVIL}"
    inputs["notes"] = [f"note {EVIL}"]
    inputs["region_tables"] = {f"Probe{EVIL}": regions_table(1).assign(acronym=EVIL)}
    html = render_page(**inputs)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    text = "".join(parse(html).text)  # what a reader sees: the original strings
    for shown in (f"m{EVIL}", f"note {EVIL}", f"probe {EVIL}", f"transform broke: {EVIL}"):
        assert shown in text


def test_failed_items_come_first_with_their_reasons_and_are_counted():
    inputs = sample()
    html = render_page(**inputs)
    page = parse(html)
    summary = [(cls, cells) for cls, cells in page.rows if cls in {"ok", "failed", "skipped"}]
    assert [cls for cls, _ in summary] == ["failed", "skipped", "ok", "ok"]
    status, name, seconds, reason = summary[0][1]
    assert (status, name, seconds) == ("failed", "ccf ProbeB", "3.0 s")
    assert reason == f"transform broke: {EVIL}"
    assert summary[1][1][3] == "no spike sorting"
    assert [cells[1] for _, cells in summary[2:]] == ["histology", "channels ProbeA"]
    assert summary[3][1][2] == "1 min 15 s"
    assert '<li class="failed">1 failed</li>' in html
    assert "1 item failed" in html


def test_no_failure_banner_when_nothing_failed():
    inputs = sample()
    inputs["items"] = [i for i in inputs["items"] if i.status != "failed"]
    html = render_page(**inputs)
    header = html.split("<body>")[1].split("<main>")[0]
    assert 'class="alert"' not in html and "failed" not in header


def test_region_tables_are_present_per_label():
    inputs = sample()
    page = parse(render_page(**inputs))
    for label in inputs["region_tables"]:
        assert label in page.h3
    header = [cells for cls, cells in page.rows if cells and cells[0] == "shank"]
    assert len(header) == 2 and header[0] == list(regions_table(1).columns)
    rows = [cells for cls, cells in page.rows if len(cells) == 10 and cells[0] in {"1", "2"}]
    assert ["1", "DG-mo", "10703", "10703", "15", "75.5", "10", "0", "3", "0"] in rows
    assert len(rows) == 4


def test_page_is_self_contained():
    html = render_page(**sample())
    low = html.lower()
    for banned in ("http", "//", "<script", "<link", "@import", "url(", "<iframe", "<object"):
        assert banned not in low, banned
    page = parse(html)
    files = {f.file for f in sample()["figures"]}
    # every reference is a figure file of the same folder or an in-page anchor
    assert all(h in files or re.fullmatch(r"#[a-z0-9-]+", h) for h in page.hrefs), page.hrefs
    assert {img["src"] for img in page.imgs} <= files


def test_file_names_are_percent_encoded_and_bad_names_rejected():
    fig = PageFigure("a b#1.png", "odd name", "Probes")
    html = render_page("m", [fig], [], {})
    assert 'src="a%20b%231.png"' in html
    for bad in ("", "/abs.png", "../up.png", "sub//x.png", "http://example.org/x.png", "a\\b.png"):
        with pytest.raises(ValueError, match="relative name"):
            render_page("m", [PageFigure(bad, "t", "Probes")], [], {})


def test_empty_inputs_render_a_valid_page():
    page = parse(render_page("m", [], [], {}))
    assert page.imgs == [] and "No figures were made." in "".join(page.text)
    empty = {"ProbeA": regions_table(1).iloc[0:0]}
    assert "No regions along this track." in render_page("m", [], [], empty)


def test_the_same_inputs_give_the_same_string():
    first = render_page(**sample())
    again = render_page(**sample())  # fresh, equal objects
    assert first == again
    assert "run of 2025-01-15" in first
    assert re.search(r"\b20\d\d-\d\d-\d\d[T ]\d\d:\d\d", first) is None  # no clock in the page


def test_write_page_replaces_atomically(tmp_path: Path):
    qc = tmp_path / "qc"
    path = write_page(qc, render_page(**sample()))
    assert path == qc / PAGE_NAME and path.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    new = render_page("other", [], [], {})
    assert write_page(qc, new) == path
    assert path.read_text(encoding="utf-8") == new
    assert sorted(p.name for p in qc.iterdir()) == [PAGE_NAME]  # no temporary file left
