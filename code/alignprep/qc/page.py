"""The per-mouse QC page ``qc/index.html``: one self-contained static HTML5 file.

The page has inline CSS only: no script, no font, stylesheet or URL of any kind. Its images are
the PNG files of the same ``qc/`` folder, referenced by relative name, so the folder can be
copied, zipped or opened from any file browser. Every string that comes from data (the mouse
id, item names and reasons, titles, captions, notes, table cells) is HTML-escaped.

The same inputs give the same string: nothing here reads a clock or the file system.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..outputs import QC_PAGE_NAME, write_bytes_atomic

log = logging.getLogger(__name__)

#: The page's file name inside the ``qc/`` folder (named in :mod:`alignprep.outputs`).
PAGE_NAME = QC_PAGE_NAME

#: Where each status sorts in the run summary: failures first, then skips, then the rest.
_STATUS_RANK = {"failed": 0, "skipped": 1}
_KNOWN_STATUSES = ("ok", "failed", "skipped")


@dataclass(frozen=True)
class PageFigure:
    """One figure of the page.

    Attributes
    ----------
    file : str
        PNG file name relative to the ``qc/`` folder, e.g. ``"registration_centre.png"``.
    title : str
        Heading above the figure (also its ``alt`` text).
    section : str
        Section of the page, e.g. ``"Registration"`` or ``"Probes"``.
    caption : str
        Optional sentence under the figure.
    """

    file: str
    title: str
    section: str
    caption: str = ""


@dataclass(frozen=True)
class PageItem:
    """One work item of the run: its name, ``"ok"``/``"failed"``/``"skipped"``, why, how long."""

    name: str
    status: str
    reason: str = ""
    seconds: float = 0.0


_CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6575; --line: #d9dee6;
  --panel: #ffffff; --bg: #f4f6f9; --ok: #1f7a3a; --ok-bg: #e3f4e8; --bad: #b42318;
  --bad-bg: #fdecea; --skip: #8a5a00; --skip-bg: #fff4d6; --accent: #2456a6; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header { background: #1d2b45; color: #fff; padding: 20px 28px 16px; }
header h1 { margin: 0 0 6px; font-size: 24px; font-weight: 600; letter-spacing: .2px; }
header h1 .mouse { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
header .counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 0; padding: 0;
  list-style: none; }
header .counts li { padding: 2px 10px; border-radius: 999px; background: rgba(255,255,255,.14);
  font-size: 14px; }
header .counts li.failed { background: #d92d20; font-weight: 600; }
header .counts li.skipped { background: #b07800; }
header .counts li.ok { background: #2a8a48; }
header ul.notes { margin: 10px 0 0; padding-left: 18px; color: #d5dcea; font-size: 14px; }
nav { position: sticky; top: 0; z-index: 1; display: flex; flex-wrap: wrap; gap: 4px 18px;
  background: var(--panel); border-bottom: 1px solid var(--line); padding: 8px 28px;
  font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav a:hover { text-decoration: underline; }
main { max-width: 1480px; margin: 0 auto; padding: 8px 28px 40px; }
section { margin-top: 26px; }
h2 { font-size: 20px; margin: 0 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 0 0 8px; }
.alert { margin: 0 0 12px; padding: 10px 14px; border-left: 5px solid var(--bad);
  background: var(--bad-bg); color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
.table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--line);
  border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: #eef1f6; font-weight: 600; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 13px; overflow-wrap: anywhere; }
td.reason { white-space: pre-wrap; overflow-wrap: anywhere; }
tr.failed td { background: var(--bad-bg); }
tr.failed td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
tr.skipped td { background: var(--skip-bg); }
.badge { display: inline-block; min-width: 62px; padding: 1px 8px; border-radius: 4px;
  font-size: 12px; font-weight: 700; text-align: center; text-transform: uppercase;
  letter-spacing: .4px; }
.badge.ok { color: var(--ok); background: var(--ok-bg); }
.badge.failed { color: #fff; background: var(--bad); }
.badge.skipped { color: var(--skip); background: #ffe8a3; }
.badge.other { color: var(--muted); background: #e6e9ef; }
.figures { display: grid; gap: 18px;
  grid-template-columns: repeat(auto-fit, minmax(min(100%, 620px), 1fr)); }
figure { margin: 0; padding: 14px; background: var(--panel); border: 1px solid var(--line);
  border-radius: 6px; min-width: 0; }
figure img { display: block; max-width: 100%; max-height: 80vh; height: auto; width: auto;
  margin: 0 auto; background: #fff; }
figure > a { display: block; }
figcaption { margin-top: 8px; color: var(--muted); font-size: 14px; }
figcaption a, .full a { color: var(--accent); }
.full { display: block; font-size: 13px; margin-top: 2px; }
.table-wrap.fit { display: inline-block; max-width: 100%; vertical-align: top; }
table.regions { width: auto; }
table.regions td, table.regions th { padding: 5px 14px; }
.probe { margin-bottom: 20px; }
.probe h3 { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
footer { color: var(--muted); font-size: 13px; text-align: center; padding: 12px 0 24px; }
@media (max-width: 700px) { header, nav, main { padding-left: 12px; padding-right: 12px; } }
""".strip()


def _e(value: object) -> str:
    """HTML-escaped text of ``value`` (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def _src(file: str) -> str:
    """The escaped, percent-encoded relative reference of a figure file.

    Raises
    ------
    ValueError
        If ``file`` is not a plain relative path inside the ``qc/`` folder.
    """
    parts = file.split("/")
    if (
        not file
        or "\\" in file
        or PurePosixPath(file).is_absolute()
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise ValueError(f"figure file {file!r} is not a relative name inside the qc/ folder")
    return _e(quote(file, safe="/"))


def _slug(text: str, taken: set[str], fallback: str) -> str:
    """A unique ``id`` made of ``[a-z0-9-]`` from ``text``."""
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or fallback
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def _seconds(value: float) -> str:
    """A duration for people: ``"0.4 s"``, ``"12.3 s"``, ``"2 min 05 s"``."""
    if not math.isfinite(value) or value <= 0:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes} min {secs:02d} s"


def _cell(value: Any) -> tuple[str, bool]:
    """Text of one table cell and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, Integral):
        return str(int(value)), True
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            return str(number), True
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number)), True
        return f"{number:.3f}".rstrip("0").rstrip("."), True
    try:
        if pd.isna(value):
            return "", False
    except (TypeError, ValueError):
        pass
    return str(value), False


def _header(mouse_id: str, items: Sequence[PageItem], notes: Sequence[str]) -> list[str]:
    counts = {s: sum(1 for i in items if i.status == s) for s in _KNOWN_STATUSES}
    other = len(items) - sum(counts.values())
    out = [
        "<header>",
        f'<h1>QC &middot; mouse <span class="mouse">{_e(mouse_id)}</span></h1>',
        '<ul class="counts">',
        f"<li>{len(items)} work item{'s' if len(items) != 1 else ''}</li>",
    ]
    for status in ("failed", "skipped", "ok"):
        if counts[status]:
            out.append(f'<li class="{status}">{counts[status]} {status}</li>')
    if other:
        out.append(f'<li class="other">{other} other</li>')
    out.append("</ul>")
    if notes:
        out.append('<ul class="notes">')
        out.extend(f"<li>{_e(n)}</li>" for n in notes)
        out.append("</ul>")
    out.append("</header>")
    return out


def _summary(items: Sequence[PageItem], section_id: str) -> list[str]:
    out = [f'<section id="{section_id}">', "<h2>Run summary</h2>"]
    failed = [i for i in items if i.status == "failed"]
    if failed:
        noun = "item" if len(failed) == 1 else "items"
        out.append(f'<p class="alert">{len(failed)} {noun} failed: listed first below.</p>')
    if not items:
        out += ['<p class="empty">No work items were recorded.</p>', "</section>"]
        return out
    ordered = sorted(items, key=lambda i: _STATUS_RANK.get(i.status, 2))  # stable
    out += [
        '<div class="table-wrap"><table class="summary">',
        "<thead><tr><th>Status</th><th>Item</th>"
        '<th class="num">Time</th><th>Reason</th></tr></thead>',
        "<tbody>",
    ]
    for item in ordered:
        kind = item.status if item.status in _KNOWN_STATUSES else "other"
        out.append(
            f'<tr class="{kind}">'
            f'<td><span class="badge {kind}">{_e(item.status)}</span></td>'
            f'<td class="name">{_e(item.name)}</td>'
            f'<td class="num">{_seconds(item.seconds)}</td>'
            f'<td class="reason">{_e(item.reason)}</td></tr>'
        )
    out += ["</tbody></table></div>", "</section>"]
    return out


def _figure(fig: PageFigure) -> list[str]:
    src = _src(fig.file)
    title = _e(fig.title)
    caption = f"{_e(fig.caption)} " if fig.caption else ""
    return [
        "<figure>",
        f"<h3>{title}</h3>",
        f'<a href="{src}"><img src="{src}" alt="{title}"></a>',
        f'<figcaption>{caption}<span class="full"><a href="{src}">Full size: '
        f"{_e(fig.file)}</a></span></figcaption>",
        "</figure>",
    ]


def _table(label: str, table: pd.DataFrame) -> list[str]:
    out = ['<div class="probe">', f"<h3>{_e(label)}</h3>"]
    if table.empty:
        out += ['<p class="empty">No regions along this track.</p>', "</div>"]
        return out
    rows = [[_cell(v) for v in row] for row in table.itertuples(index=False, name=None)]
    numeric = [
        bool(rows) and all(is_num or not text for text, is_num in col)
        for col in zip(*rows, strict=True)
    ]
    head = "".join(
        f'<th class="num">{_e(c)}</th>' if num else f"<th>{_e(c)}</th>"
        for c, num in zip(table.columns, numeric, strict=True)
    )
    out += [
        '<div class="table-wrap fit"><table class="regions">',
        f"<thead><tr>{head}</tr></thead>",
    ]
    out.append("<tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="num">{_e(text)}</td>' if num else f"<td>{_e(text)}</td>"
            for (text, _), num in zip(row, numeric, strict=True)
        )
        out.append(f"<tr>{cells}</tr>")
    out += ["</tbody></table></div>", "</div>"]
    return out


def render_page(
    mouse_id: str,
    figures: Sequence[PageFigure],
    items: Sequence[PageItem],
    region_tables: Mapping[str, pd.DataFrame],
    notes: Sequence[str] = (),
) -> str:
    """The QC page of one mouse as an HTML5 string.

    Parameters
    ----------
    mouse_id : str
        Shown in the title and the header.
    figures : sequence of PageFigure
        Grouped by section; sections and the figures inside each keep their first-seen order.
    items : sequence of PageItem
        The run summary: failed items first (counted at the top), then skipped, then the rest.
    region_tables : mapping of str to DataFrame
        Regions along each track, per probe or shank label, in the mapping's order.
    notes : sequence of str
        Extra lines under the header (e.g. the run's date, passed in by the caller).

    Returns
    -------
    str
        The whole page; the same inputs give the same string.

    Raises
    ------
    ValueError
        If a figure's file is not a plain relative name inside the ``qc/`` folder.
    """
    taken: set[str] = {"summary", "regions"}
    sections: dict[str, list[PageFigure]] = {}
    for fig in figures:
        sections.setdefault(fig.section, []).append(fig)
    section_ids = {
        name: _slug(name, taken, f"section-{i}") for i, name in enumerate(sections, start=1)
    }

    nav = ['<a href="#summary">Run summary</a>']
    nav += [f'<a href="#{section_ids[name]}">{_e(name)}</a>' for name in sections]
    nav.append('<a href="#regions">Regions along the tracks</a>')

    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>QC &middot; mouse {_e(mouse_id)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        *_header(mouse_id, items, notes),
        f"<nav>{''.join(nav)}</nav>",
        "<main>",
        *_summary(items, "summary"),
    ]
    if not sections:
        out += ["<section>", "<h2>Figures</h2>", '<p class="empty">No figures were made.</p>']
        out.append("</section>")
    for name, figs in sections.items():
        out += [f'<section id="{section_ids[name]}">', f"<h2>{_e(name)}</h2>"]
        out.append('<div class="figures">')
        for fig in figs:
            out += _figure(fig)
        out += ["</div>", "</section>"]
    out += ['<section id="regions">', "<h2>Regions along the tracks</h2>"]
    if not region_tables:
        out.append('<p class="empty">No region tables were made.</p>')
    for label, table in region_tables.items():
        out += _table(label, table)
    out += [
        "</section>",
        "</main>",
        f"<footer>alignprep QC page of mouse {_e(mouse_id)}</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out)


def write_page(qc_dir: Path, html: str) -> Path:
    """Write the page to ``qc_dir/index.html`` atomically and return its path.

    The text goes to a temporary name in the same folder, then ``os.replace`` puts it in
    place (:func:`alignprep.outputs.write_bytes_atomic`), so a reader never sees half a page;
    an unchanged page is not rewritten.
    """
    path = write_bytes_atomic(Path(qc_dir) / PAGE_NAME, html.encode("utf-8"))
    log.debug("QC page %s", path)
    return path
