"""`capcast cluster`, `capcast cluster show` and `--method cod` end to end on a synthetic samples table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from capcast.cod.instances import NEEDS_INSTANCES
from capcast.testing.cli import run_in_process
TARGET = "m3e+09"


def law(flops, a, b, c):  # the synthetic table's law (tests/cod/conftest.py)
    return np.exp(-a * (flops / 1e18) ** -b - c)


def test_cluster_saves_clusters_and_show_prints_them_and_plots(samples_csv, tmp_path, capsys):
    out = tmp_path / "clusters"
    code, stdout, stderr = run_in_process(["cluster", "--samples", str(samples_csv), "--target", TARGET, "--out", str(out),
                                           "--bootstrap", "30"], capsys)
    assert code == 0, stderr
    saved = json.loads((out / "gen" / "cod.json").read_text())
    assert saved["counts"] == {"instances": 65, "subset": 30, "cluster": 60, "outlier": 0, "never_solved": 5, "missing": 0}
    kept = [c for c in saved["clusters"] if c["kept"]]
    assert [c["size"] for c in kept] == [30] and len(saved["clusters"]) == 2
    # the target's run is never fitted: 5 sizes x 3 checkpoints
    assert len(saved["checkpoints"]) == 15 and not any(ck["run"] == TARGET for ck in saved["checkpoints"])
    docs = pd.read_csv(out / "gen" / "clusters.csv")
    assert docs.loc[docs["in_subset"], "doc_id"].tolist() == list(range(30))  # the scalable instances
    assert (docs.loc[docs["doc_id"] >= 60, "status"] == "never_solved").all()
    forecast = saved["forecast"]
    truth = float(law(forecast["flops"], 2.0, 0.3, 0.1))
    assert abs(forecast["subset_forecast"] - truth) < 0.01  # the kept cluster's law extrapolates right
    # the mapping is forced through (1, 1), so it overshoots a benchmark whose other half never rises
    assert forecast["actual"] < forecast["forecast"] < forecast["actual"] + 0.1
    assert "no anchor model" in stdout and "kept: a > 1, b > 0.1, 0 <= c < 1" in stdout

    code, stdout, stderr = run_in_process(["cluster", "show", "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "c = 3.01 >= 1 (ceiling too low: non-scalable)" in stdout
    assert "forecast of m3e+09-1.0" in stdout
    png = out / "gen" / "clusters-gen.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_method_cod_forecasts_from_a_samples_table_and_refuses_a_scores_table(samples_csv, tmp_path, capsys):
    code, stdout, stderr = run_in_process(["forecast", "--samples", str(samples_csv), "--target", TARGET, "--method", "cod",
                                           "--format", "json"], capsys)
    assert code == 0, stderr
    row = json.loads(stdout)["rows"][0]
    assert row["law"] == "cod" and row["status"] == "ok", row
    assert row["lower"] <= row["forecast"] <= row["upper"] and abs(row["forecast"] - row["actual"]) < 0.1
    assert "predictable subset 30 of 65 instances" in row["reason"]

    scores = tmp_path / "scores.csv"
    pd.DataFrame({"family": "f", "run": ["a", "b", "c"], "model": ["a", "b", "c"], "params": [1e7, 1e8, 1e9], "tokens": [2e8, 2e9, 2e10],
                  "task": "t", "metric": "acc", "value": [0.3, 0.4, 0.5], "n_items": 100, "chance": 0.25}).to_csv(scores, index=False)
    code, stdout, stderr = run_in_process(["forecast", "--scores", str(scores), "--target", "c", "--method", "cod"], capsys)
    assert code == 2 and stderr.strip() == f"error: {NEEDS_INSTANCES}"


def test_backtest_compares_cod_with_other_laws(samples_csv, capsys):
    code, stdout, stderr = run_in_process(["backtest", "--samples", str(samples_csv), "--methods", "cod,passuntil",
                                           "--format", "json"], capsys)
    assert code == 0, stderr
    report = json.loads(stdout)
    assert set(report["methods"]) == {"cod", "passuntil"}
    cod_rows = [r for r in report["rows"] if r["method"] == "cod"]
    assert [r["model"] for r in cod_rows] == ["m3e+09-1.0"] and cod_rows[0]["status"] == "ok"
    assert report["methods"]["cod"]["mae"] < 10  # points
    assert [r["model"] for r in report["rows"] if r["method"] == "passuntil"] == ["m3e+09-1.0"]


def test_method_help_lists_cod(capsys):
    for command in ("forecast", "backtest"):
        code, stdout, stderr = run_in_process([command, "--help"], capsys)
        assert code == 0, stderr
        words = " ".join(stdout.replace("│", " ").split())
        assert "cod" in words.split() or "cod," in words.split(), (command, words)
