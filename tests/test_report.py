"""The run statistics and the HTML report (also rendered in a real headless chromium)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_output import make_run
from xqdecl import report
from xqdecl.store.journal import JobRow
from xqdecl.store.layout import RunDir

Xq = Callable[..., tuple[int, str, str]]


def test_lanes_never_overlap_and_use_the_peak_concurrency() -> None:
    rng = random.Random(7)
    spans = sorted((s, s + rng.uniform(0.1, 5)) for s in (rng.uniform(0, 100)
                                                            for _ in range(3000)))
    lane, count = report.lanes(spans)
    ends: dict[int, float] = {}
    for (start, end), k in zip(spans, lane, strict=True):
        assert ends.get(k, -1.0) <= start
        ends[k] = end
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = cur = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    assert count == peak


@pytest.mark.parametrize("damage", ["missing", "empty-db", "garbage", "no-meta"])
def test_missing_or_partial_journal(tmp_path: Path, damage: str) -> None:
    rd = RunDir(tmp_path / "run")
    if damage != "missing":
        rd.create()
    if damage == "empty-db":
        sqlite3.connect(rd.journal).close()
    elif damage == "garbage":
        rd.journal.write_bytes(b"this is not a database" * 100)
    elif damage == "no-meta":
        db = sqlite3.connect(rd.journal)
        db.execute("CREATE TABLE jobs (idx INTEGER PRIMARY KEY, name TEXT, grp INTEGER, "
                   "hash TEXT, status TEXT, trial INTEGER, jid TEXT, rc INTEGER, "
                   "submitted REAL, started REAL, ended REAL, note TEXT)")
        db.execute("INSERT INTO jobs VALUES (0, 'a', 0, 'h', 'running', 0, NULL, NULL, "
                   "NULL, 1.0, NULL, NULL)")
        db.commit()
        db.close()
    stats = report.collect(rd.root)
    if damage == "no-meta":
        assert stats.counts == {"running": 1}
    else:
        assert stats.problem and not stats.counts
    if damage == "missing":
        rd.root.mkdir(parents=True)
    path = report.write_report(rd.root)
    assert path == rd.root / "report.html"
    page = path.read_text()
    assert "<html" in page and "xqdecl run" in page


def test_report_content_is_escaped_and_counts_are_static(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "demo", [["succeeded"] * 5 + ["failed", "running", "skipped"]],
                  stderr={5: "bad <b>html</b> & </script><script>alert(1)</script>\n"})
    stats = report.collect(rd.root, keep_rows=True)
    stats.rows[5].name = "x</script><img src=x onerror=alert(1)>"
    page = report.render_html(stats)
    assert "<img src=x" not in page and "<script>alert" not in page
    assert page.count("<script") == 2  # the data island and the inline script, no more
    assert 'id="count-total">8<' in page and 'id="count-failed">1<' in page
    data = json.loads(re.search(r'id="data">(.*?)</script>', page, re.S).group(1))
    assert len(data["start"]) == 7  # the skipped job (done by an earlier run) is not drawn
    assert data["statuses"][data["status"][data["index"].index(6)]] == "running"
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


# -- a real run of ~2,000 jobs, rendered by a real browser -------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real local run: 2,000 jobs, 1 in 25 of the second group fails."""
    root = tmp_path_factory.mktemp("big")
    spec = root / "big.toml"
    spec.write_text(
        'name = "big"\nforks = 48\n'
        '[[jobs]]\nname = "ok-{i}"\ncmd = "sleep 0.0$(( {i} % 4 ))"\n'
        "matrix = { i = { range = [0, 1500] } }\n"
        '[[jobs]]\nname = "mixed-{i}"\n'
        "cmd = \"if [ $(( {i} % 25 )) -eq 3 ]; then echo 'error: input {i} is broken' >&2; "
        'exit 2; fi"\n'
        "matrix = { i = { range = [0, 500] } }\n"
    )
    import sys

    proc = subprocess.run([sys.executable, "-m", "xqdecl.cli", "run", str(spec), "-o", "quiet"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    return spec, root / ".xqdecl" / "big"


@pytest.mark.timeout(900)
def test_report_of_a_real_run_in_headless_chromium(big_run: tuple[Path, Path], xq: Xq,
                                                   tmp_path: Path) -> None:
    spec, rundir = big_run
    code, out, err = xq("report", str(spec), "-o", "json")
    assert code == 0, err
    page = Path(json.loads(out)["report"])
    assert page == rundir / "report.html"
    assert page.stat().st_size < 2_000_000
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium; "
                    ".ci/run installs it)")
    shots = Path(os.environ.get("XQDECL_SCREENSHOT_DIR", str(tmp_path)))
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "report-2000-jobs.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = page.as_uri()
    run = subprocess.run([browser, *flags, "--window-size=1280,1700", f"--screenshot={shot}",
                          url], capture_output=True, text=True, timeout=180)
    if not shot.exists():
        pytest.skip(f"chromium could not run here: {run.stderr[-500:]}")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1280, 1700)
    assert len(png) > 30_000  # a blank page compresses to a few KB
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=180).stdout
    assert 'id="count-total">2000<' in dom
    assert 'id="count-failed">20<' in dom and 'id="count-succeeded">1980<' in dom
    # written by the page's script once the canvas is drawn: proof that the JS ran
    note = re.search(r'id="timeline-note"[^>]*>([^<]*)<', dom).group(1)
    assert re.fullmatch(r"2000 jobs on \d+ lanes.*", note), note
    assert "error: input 3 is broken" in dom


def test_collect_reads_rows_without_times(tmp_path: Path) -> None:
    rd = make_run(tmp_path / "r", [["queued", "succeeded"]])
    stats = report.collect(rd.root, keep_rows=True)
    stats.rows.append(JobRow(9, "odd", 0, "h", "failed", started=None, ended=5.0))
    data = report.timeline_data(stats)
    assert data["index"] == [1]
    assert report.fmt_duration(3725) == "1h02m" and report.fmt_duration(0.25) == "0.2s"


def test_the_page_inlines_its_package_data_files(tmp_path: Path) -> None:
    from importlib import resources

    from xqdecl.report import page as page_mod

    static = resources.files("xqdecl.report").joinpath("static")
    for name in ("page.html", "report.css", "report.js"):
        assert static.joinpath(name).is_file(), name  # shipped beside the code
    rd = make_run(tmp_path / "inline", [["succeeded", "failed"]])
    page = report.render_html(report.collect(rd.root, keep_rows=True))
    css, js = page_mod.static_text("report.css"), page_mod.static_text("report.js")
    assert f"<style>\n{css}</style>" in page and f"<script>\n{js}</script>" in page
    assert "#timeline-box{" in css and "getElementById('timeline')" in js
    assert "{css}" not in page and "{js}" not in page and "{data}" not in page
