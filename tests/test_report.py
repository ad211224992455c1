"""avrep report: the HTML page is self-contained and every image in it loads in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_sync import synth_run  # noqa: F401  (session fixture: tiny run trained on the tiny corpus)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(n)), None
)


def test_goal_rows_mark_met_and_unmet():
    from avrep.commands.report import CHECKOUT_GOALS
    from avrep.report.html import goal_rows, load_goals

    res = {
        "lipread": {
            "video": {"top1": 0.5, "top5": 0.9},
            "audio": {"top1": 0.995},
            "fused": {"top1": 0.6},
            "chance_top1": 0.1,
            "homophene_ceiling": 0.8,
        },
        "retrieval": {
            "a2v": {"R@1": 0.4, "R@5": 1.0, "median_rank": 1.0, "N": 200},
            "a2v_sync": {"R@1": 0.95, "R@5": 1.0, "median_rank": 1.0, "N": 200},
        },
        "probes": {"speaker_from_word_features": {"accuracy": 0.5, "chance": 0.1}},
    }
    rows = {r["metric"]: r for r in goal_rows(res, None, load_goals(CHECKOUT_GOALS)[0])}
    assert rows["video word top-1"]["met"] is False  # 0.5 < 0.95 * 0.8
    assert rows["audio word top-1"]["met"] is True and rows["fused word top-1"]["met"] is True
    sync, word = rows["audio->video R@1 (sync embedding)"], rows["audio->video R@1 (word embedding)"]
    assert sync["met"] is True and "1:200" in sync["note"]
    assert word["met"] is None  # the word embedding is not meant to single out one clip: no goal on it
    assert rows["probe: speaker from word features"]["met"] is False


def test_goals_come_from_a_table_not_the_library(tmp_path):
    """Goals come from the caller (the CLI's default: the checkout's benchmarks/goals.json); none = no goals."""
    import json

    from avrep.commands.report import CHECKOUT_GOALS
    from avrep.errors import AvrepError
    from avrep.report.html import goal_rows, load_goals

    table = json.loads(CHECKOUT_GOALS.read_text())
    goals, source = load_goals(CHECKOUT_GOALS)
    assert source == str(CHECKOUT_GOALS) and goals["audio_top1"] == table["lipread"]["audio_top1"]
    assert load_goals() == ({}, None)  # the library reads no table by path
    res = {"lipread": {"audio": {"top1": 0.97}}}
    mine = tmp_path / "goals.json"
    mine.write_text(json.dumps({"audio_top1": 0.96}))  # a bare block works as well as a whole table
    rows = {r["metric"]: r for r in goal_rows(res, None, load_goals(mine)[0])}
    assert rows["audio word top-1"]["met"] is True and rows["audio word top-1"]["goal"] == ">= 0.96"
    rows = {r["metric"]: r for r in goal_rows(res, None, {})}
    assert rows["audio word top-1"]["met"] is None and rows["audio word top-1"]["goal"] is None
    (tmp_path / "bad.json").write_text("[0.9]")
    with pytest.raises(AvrepError, match="bad.json"):
        load_goals(tmp_path / "bad.json")


@pytest.fixture(scope="module")
def report_html(synth_run, tmp_path_factory):  # noqa: F811
    """Eval the run (writes eval_test.json + confusion PNG), add a generated strip, build the report."""
    from avrep.eval import evaluate_run
    from avrep.report import build_report

    run = tmp_path_factory.mktemp("rep") / "run"
    shutil.copytree(synth_run["run"], run)
    # probes off: the tiny corpus' 10-clip test split is too small for their stratified split
    evaluate_run(
        run,
        str(synth_run["store"]),
        "test",
        run / "eval_test.json",
        device="cpu",
        workers=0,
        probes=False,
        progress=False,
    )
    import cv2

    strip = np.concatenate([np.full((64, 64, 3), 40 * i, np.uint8) for i in range(6)], axis=1)
    (run / "generated").mkdir()
    cv2.imwrite(str(run / "generated" / "gen_strip.png"), strip)
    out = run / "report.html"
    p = subprocess.run(
        [sys.executable, "-m", "avrep", "report", str(run), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stderr
    assert out.exists() and build_report  # the CLI wraps build_report
    return out


def test_report_is_self_contained_with_all_sections(report_html):
    html = report_html.read_text()
    for h in (
        "Metrics vs goals",
        "Training curves",
        "Confusion matrix",
        "t-SNE",
        "Retrieval examples",
        "Generated frame strips",
        "homophene ceiling",
    ):
        assert h in html, h
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(srcs) >= 7  # bars, curves, confusion, 2 t-SNE, retrieval, strip
    assert all(s.startswith("data:image/") for s in srcs)  # nothing to fetch: one file is the whole report
    assert "Not available" not in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_images_load_in_headless_chromium(report_html, tmp_path):
    """Open the page in headless Chromium; a script writes each <img>'s naturalWidth into the DOM."""
    page = tmp_path / "check.html"
    probe = (
        "<script>window.addEventListener('load',function(){var im=document.images,r=[];"
        "for(var i=0;i<im.length;i++){r.push(im[i].complete&&im[i].naturalWidth>0?1:0)}"
        "var d=document.createElement('pre');d.id='imgcheck';d.textContent='IMGCHECK:'+im.length+':'+r.join('');"
        "document.body.appendChild(d)});</script>"
    )
    page.write_text(report_html.read_text().replace("</body>", probe + "</body>"))
    p = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"IMGCHECK:(\d+):([01]*)", p.stdout)
    assert m, (p.stdout[-500:], p.stderr[-1000:])
    n, flags = int(m.group(1)), m.group(2)
    assert n >= 7 and flags == "1" * n, (n, flags)


def test_report_without_eval_or_data_degrades_clearly(synth_run, tmp_path):  # noqa: F811
    from avrep.errors import AvrepError
    from avrep.report import build_report

    run = tmp_path / "run"
    shutil.copytree(synth_run["run"], run)
    out = build_report(run, tmp_path / "r.html")
    html = out.read_text()
    assert "No evaluation JSON" in html and "pass --data STORE" in html
    assert "data:image/png;base64," in html  # training curves still there
    with pytest.raises(AvrepError, match="not an avrep training run"):
        build_report(tmp_path, tmp_path / "x.html")
