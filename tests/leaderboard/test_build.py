"""`capcast leaderboard build` and `resolve` on real forecast and backtest JSON: the pages, the
ranking figures, pre-registration and resolution, escaping, and bad input (one line, exit 2,
nothing half-written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from markupsafe import escape
import pytest

from capcast.errors import CapcastError
from capcast.leaderboard import build_leaderboard, resolve
from capcast.leaderboard.registry import load_registry
from capcast.leaderboard.stats import method_figures


def _build(tmp_path: Path, inputs, *results: str, **kw) -> Path:
    files = [inputs[r] for r in results]
    return build_leaderboard(files, tmp_path / "site", scores=[inputs["scores"]], registry=tmp_path / "registry.jsonl", **kw)


def _cells(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_build_writes_every_page_with_the_backtest_ranking(tmp_path, inputs):
    index = _build(tmp_path, inputs, "backtest", "hindsight")
    site = index.parent
    family_pages = sorted(site.glob("family-*.html"))
    assert index.name == "index.html" and (site / "methods.html").is_file() and len(family_pages) == 1
    assert (site / "assets" / "table.js").is_file() and (site / "assets" / "style.css").is_file()
    report = json.loads(inputs["backtest"].read_text())
    ranked = [row[1] for row in _cells(index.read_text(), "ranking-table")]
    expected = sorted((m for m, s in report["methods"].items() if s["mae"] is not None), key=lambda m: report["methods"][m]["mae"])
    assert ranked[: len(expected)] == expected
    # the MAE shown is the backtest's own, to two decimals
    shown = {row[1]: float(row[2]) for row in _cells(index.read_text(), "ranking-table") if row[2]}
    for method, mae in shown.items():
        assert mae == pytest.approx(report["methods"][method]["mae"], abs=0.006)
    # and its bias, signed, beside it (the 6th cell: rank, method, MAE, its interval, P(best), bias)
    assert "bias (pts)" in index.read_text()
    biased = {row[1]: row[5] for row in _cells(index.read_text(), "ranking-table") if row[2]}
    for method, cell in biased.items():
        assert re.fullmatch(r"[+-]\d+\.\d\d", cell) and float(cell) == pytest.approx(report["methods"][method]["bias"], abs=0.006)
    page = family_pages[0].read_text()
    assert page.count("<svg") == 2 and page.count('class="sortable task-table"') == 2  # one chart and table per task
    # every asset is local: no http(s) reference anywhere in the site
    for html in site.rglob("*.html"):
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html.read_text()), html


def test_bootstrap_figures_are_seeded_and_sensible():
    rows = []
    rng = np.random.default_rng(1)
    for i in range(40):
        for method, spread in (("good", 0.01), ("bad", 0.08)):
            actual = 0.5
            forecast = actual + rng.normal(0, spread)
            rows.append({"family": "f", "model": f"m{i}", "task": "t", "metric": "acc", "step": None, "method": method,
                         "status": "ok", "forecast": forecast, "lower": forecast - 0.05, "upper": forecast + 0.05, "actual": actual})
    rows.append({"family": "f", "model": "x", "task": "t", "metric": "acc", "step": None, "method": "bad", "status": "not predictable yet",
                 "forecast": None, "lower": None, "upper": None, "actual": 0.5})
    first, again = method_figures(rows), method_figures(rows)
    assert first == again  # fixed seed: the same site every time
    good, bad = first
    assert (good.method, bad.method) == ("good", "bad")
    assert good.mae_low < good.mae < good.mae_high and bad.mae_low < bad.mae < bad.mae_high
    assert good.p_best > 0.99 and good.p_best + bad.p_best == pytest.approx(1.0)
    assert bad.answered_fraction == pytest.approx(40 / 41) and good.answered_fraction == 1.0
    assert good.median_width == pytest.approx(10.0) and 0 < bad.coverage < good.coverage <= 1
    signed = [(r["forecast"] - r["actual"]) * 100 for r in rows if r["method"] == "bad" and r["forecast"] is not None]
    assert bad.bias == pytest.approx(np.mean(signed)) and abs(bad.bias) < bad.mae  # errors of both signs: bias is not the MAE


def test_registration_resolution_and_a_changed_forecast(tmp_path, inputs, run_cli):
    registry_path = tmp_path / "registry.jsonl"
    _build(tmp_path, inputs, "backtest", "forecast")
    registry = load_registry(registry_path)
    forecast = json.loads(inputs["forecast"].read_text())
    assert len(registry.registrations) == len(forecast["rows"]) == 2 and not registry.resolutions
    first = registry.registrations[0]
    assert first["capcast_version"] and first["laws"] == [forecast["rows"][0]["law"]] and re.fullmatch(r"[0-9a-f]{64}", first["input_sha256"])
    assert first["registered_at"].endswith("+00:00") and first["forecast"]["forecast"] == forecast["rows"][0]["forecast"]
    index = (tmp_path / "site" / "index.html").read_text()
    assert len(_cells(index, "registered-table")) == 2 and 'id="resolved-table"' not in index
    # the same forecast again registers nothing new
    before = registry_path.read_text()
    _build(tmp_path, inputs, "backtest", "forecast")
    assert registry_path.read_text() == before
    # resolve through the CLI: the actual is added, the registration lines stay byte for byte
    actuals = tmp_path / "actuals.csv"
    actuals.write_text("model,task,metric,value\ntarget,arc,acc,0.9\n")
    code, _, err = run_cli(["leaderboard", "resolve", "--registry", str(registry_path), "--actuals", str(actuals)])
    assert code == 0 and "resolved 1 forecast(s)" in err and "1 still waiting" in err
    assert registry_path.read_text().startswith(before)
    index = (_build(tmp_path, inputs, "backtest", "forecast")).read_text()
    resolved = _cells(index, "resolved-table")
    assert len(resolved) == 1 and resolved[0][2] == "arc" and "resolved" in resolved[0][4]
    assert float(re.sub(r"<[^>]+>", "", resolved[0][11])) == pytest.approx(abs(forecast["rows"][0]["forecast"] - 0.9) * 100, abs=0.006)
    # a changed forecast of the same target and task: a new registration; the old one stays, superseded
    changed = json.loads(inputs["forecast"].read_text())
    changed["rows"][0]["forecast"] += 0.01
    changed_path = tmp_path / "changed.json"
    changed_path.write_text(json.dumps(changed))
    build_leaderboard([inputs["backtest"], changed_path], tmp_path / "site", registry=registry_path)
    registry = load_registry(registry_path)
    assert len(registry.registrations) == 3
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count("superseded by") == 1 and first["id"] in index
    # a resolution is final: another value for the same forecast is refused
    actuals.write_text("model,task,metric,value\ntarget,arc,acc,0.5\n")
    code, _, err = run_cli(["leaderboard", "resolve", "--registry", str(registry_path), "--actuals", str(actuals)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "a resolution is final" in err


def test_an_edited_registration_is_refused(tmp_path, inputs, run_cli):
    _build(tmp_path, inputs, "forecast")
    registry_path = tmp_path / "registry.jsonl"
    lines = registry_path.read_text().splitlines()
    record = json.loads(lines[0])
    record["forecast"]["forecast"] = 0.99  # someone moves the number after the fact
    registry_path.write_text("\n".join([json.dumps(record, sort_keys=True, separators=(",", ":"))] + lines[1:]) + "\n")
    code, _, err = run_cli(["leaderboard", "build", "--from", str(inputs["forecast"]), "--out", str(tmp_path / "site"),
                            "--registry", str(registry_path)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "changed after it was" in err
    registry_path.write_text("\n".join(lines[1:]) + "\n")  # a line dropped: the chain breaks
    with pytest.raises(CapcastError, match="does not follow the line before it"):
        load_registry(registry_path)


def test_every_string_from_the_data_is_escaped(tmp_path, inputs, malicious):
    site = _build(tmp_path, inputs, "backtest", "hindsight").parent
    for page in site.glob("*.html"):
        html = page.read_text()
        assert "<img" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", ""), page
    family = next(site.glob("family-*.html")).read_text()
    assert family.count(str(escape(malicious))) >= 4  # table cells and SVG tooltips alike


@pytest.mark.parametrize("content, says", [
    ("{not json", "not valid JSON"),
    ('{"interval": 0.9}', "no list of 'rows'"),
    ('{"interval": 0.9, "rows": [{"task": "arc"}]}', "row 1 lacks"),
    ('{"interval": 0.9, "rows": [{"family": "f", "model": "m", "task": "t", "metric": "acc", "law": "auto", "forecast": "high",'
     ' "lower": 0.1, "upper": 0.2, "actual": null, "status": "ok", "reason": ""}]}', "'forecast' must be a number"),
])
def test_bad_input_is_one_line_and_leaves_the_site_whole(tmp_path, inputs, run_cli, content, says):
    site = _build(tmp_path, inputs, "backtest").parent
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out, err = run_cli(["leaderboard", "build", "--from", str(inputs["backtest"]), "--from", str(bad), "--out", str(site),
                              "--registry", str(tmp_path / "registry.jsonl")])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".site")) == []  # no temporary folder left


def test_missing_input_and_a_foreign_folder_are_refused(tmp_path, inputs, run_cli):
    code, _, err = run_cli(["leaderboard", "build", "--from", str(tmp_path / "nope.json"), "--out", str(tmp_path / "site")])
    assert code == 2 and "no such result file" in err and not (tmp_path / "site").exists()
    mine = tmp_path / "docs"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run_cli(["leaderboard", "build", "--from", str(inputs["backtest"]), "--out", str(mine)])
    assert code == 2 and "did not build" in err and (mine / "notes.txt").read_text() == "keep me"
    actuals = tmp_path / "actuals.csv"
    actuals.write_text("model,task,value\nm,t,1\n")
    _build(tmp_path, inputs, "forecast")
    with pytest.raises(CapcastError, match="lacks column"):
        resolve(tmp_path / "registry.jsonl", actuals)
