"""``capcast forecast`` and ``capcast backtest`` on real scores files written to tmp (CSV and
Parquet): outputs, plots, a third-party law plugin, and every bad input (exit 2, one line)."""

from __future__ import annotations

from capcast.testing.cli import run_in_process

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from capcast.errors import CapcastError
from capcast.forecasting.forecast import ForecastRow, forecast_scores
from capcast.laws.base import Target

SIZES = {"s1": 2e7, "s2": 6e7, "s3": 2e8, "s4": 6e8, "big": 6e9}


def true_rising(params: float, tokens: float) -> float:
    """The rising task's true accuracy: the formula synthetic_table draws from, written out again."""
    return float(0.25 + 0.7 * expit(-0.3 + 1.2 * (np.log10(6 * params * tokens) - 18.5)))


def synthetic_table(seed: int = 0) -> pd.DataFrame:
    """A family of 5 sizes x 3 checkpoints on two tasks: one rising, one stuck at chance."""
    rng = np.random.default_rng(seed)
    rows = []
    for model, params in SIZES.items():
        for step, frac in ((1000, 0.3), (2000, 0.6), (3000, 1.0)):
            tokens = frac * 20 * params
            flops = 6 * params * tokens
            p = 0.25 + 0.7 * expit(-0.3 + 1.2 * (np.log10(flops) - 18.5))
            loss = 1.8 + 0.6 * (params / 1e9) ** -0.3 + 0.5 * (tokens / 1e11) ** -0.25
            base = {"family": "toy", "model": model, "params": params, "tokens": tokens, "flops": np.nan, "step": step}
            rows.append({**base, "task": "rising", "metric": "acc", "value": rng.binomial(2000, p) / 2000, "n_items": 2000, "chance": 0.25})
            rows.append({**base, "task": "rising", "metric": "bpb_gold", "value": loss, "n_items": 2000, "chance": np.nan})
            rows.append({**base, "task": "flat", "metric": "acc", "value": rng.binomial(300, 0.25) / 300, "n_items": 300, "chance": 0.25})
    return pd.DataFrame(rows)


@pytest.fixture
def scores_files(tmp_path: Path) -> dict[str, Path]:
    frame = synthetic_table()
    csv, parquet = tmp_path / "scores.csv", tmp_path / "scores.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    return {"csv": csv, "parquet": parquet}



def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    return run_in_process(args, capsys)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_forecast_json_rows_for_named_target(scores_files, kind, capsys) -> None:
    code, out, err = run_cli(["forecast", "--scores", str(scores_files[kind]), "--target", "big", "--format", "json"], capsys)
    assert code == 0, err
    rows = {r["task"]: r for r in json.loads(out)["rows"]}
    assert set(rows) == {"flat", "rising"}
    rising, flat = rows["rising"], rows["flat"]
    assert rising["status"] == "ok" and rising["law"].startswith("auto:")
    assert rising["lower"] <= rising["forecast"] <= rising["upper"]
    assert abs(rising["forecast"] - rising["actual"]) < 0.05
    # no trend: auto forecasts persistence and says why; a law without one says "not predictable yet"
    assert flat["status"] == "ok" and flat["law"] == "auto:flat" and "no signal above chance" in flat["reason"]
    assert flat["lower"] <= flat["forecast"] <= flat["upper"] and abs(flat["forecast"] - 0.25) < 0.05


def test_forecast_table_csv_and_explicit_target(scores_files, capsys) -> None:
    code, out, _ = run_cli(["forecast", "--scores", str(scores_files["csv"]), "--target", "big", "--method", "sigmoid"], capsys)
    assert code == 0 and "rising" in out and "not predictable yet" in out
    args = ["forecast", "--scores", str(scores_files["csv"]), "--target-params", "6e9", "--target-tokens", "1.2e11",
            "--tasks", "rising", "--method", "sigmoid", "--format", "csv"]
    # By default nothing at or above the target's compute is fitted: big's final checkpoint (the target's very size and
    # tokens) is left out, its two earlier checkpoints stay, and the row says so.
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert list(frame.columns) == list(ForecastRow.__dataclass_fields__)
    assert frame.loc[0, "model"] == "target" and np.isnan(frame.loc[0, "actual"])  # an explicit size has no actual
    assert frame.loc[0, "fitted"].split(";").count("big") == 2
    assert "1 checkpoint(s) at or above the target's compute not fitted (--interpolate fits them)" in frame.loc[0, "reason"]
    # --interpolate asks for it explicitly: "big" is then part of the fit, and the forecast lands on its measured score
    code, out, _ = run_cli(args + ["--interpolate"], capsys)
    assert code == 0
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert frame.loc[0, "status"] == "ok" and frame.loc[0, "law"] == "sigmoid"
    assert frame.loc[0, "fitted"].split(";").count("big") == 3
    measured = synthetic_table().query("model == 'big' and task == 'rising' and metric == 'acc' and step == 3000")["value"].iloc[0]
    assert abs(frame.loc[0, "forecast"] - measured) < 0.02
    assert abs(frame.loc[0, "forecast"] - true_rising(6e9, 1.2e11)) < 0.02
    assert frame.loc[0, "lower"] <= frame.loc[0, "forecast"] <= frame.loc[0, "upper"]


def test_max_step_fits_only_early_checkpoints(scores_files) -> None:
    from capcast.forecasting.forecast import run_forecasts

    full = run_forecasts(pd.read_csv(scores_files["csv"]), "big", ["rising"], method="sigmoid")[0]
    early = run_forecasts(pd.read_csv(scores_files["csv"]), "big", ["rising"], method="sigmoid", max_step=2000)[0]
    assert full.row.status == early.row.status == "ok"
    # the fit saw the 4 fitting sizes x 3 checkpoints, and with --max-step 2000 only steps 1000 and 2000 of each
    assert sorted(full.series.step) == sorted([1000.0, 2000.0, 3000.0] * 4)
    assert sorted(early.series.step) == sorted([1000.0, 2000.0] * 4)
    assert "big" not in set(full.series.model) | set(early.series.model)
    assert full.row.forecast != early.row.forecast
    # the target (big's final checkpoint) is still the one forecast, with its actual beside it
    assert early.row.actual == full.row.actual == pytest.approx(
        pd.read_csv(scores_files["csv"]).query("model == 'big' and task == 'rising' and metric == 'acc' and step == 3000")["value"].iloc[0])


def test_forecast_library_with_target_object(scores_files) -> None:
    frame = pd.read_csv(scores_files["csv"])
    frame = frame[frame["model"] != "big"]
    rows = forecast_scores(frame, Target(name="planned", params=6e9, tokens=1.2e11), tasks=["rising"], method="ladder")
    assert rows[0].status == "ok" and rows[0].actual is None and rows[0].model == "planned"
    # "planned" has big's size, which the fit never saw: the two-step law lands near the true score
    assert rows[0].law == "ladder" and abs(rows[0].forecast - true_rising(6e9, 1.2e11)) < 0.05
    assert rows[0].lower <= rows[0].forecast <= rows[0].upper


def test_choose_target_is_the_library_behind_the_target_options(scores_files) -> None:
    from capcast.spec import TargetSpec
    from capcast.forecasting.forecast import choose_target, scores_for_forecast

    assert choose_target("big") == "big"
    assert choose_target(params=6e9, tokens=1.2e11) == Target(name="target", params=6e9, tokens=1.2e11)
    assert choose_target(flops=8e22).compute == 8e22
    spec = TargetSpec(name="planned", params=7e9, tokens=2e12)
    assert choose_target(spec_target=spec) == Target(name="planned", params=7e9, tokens=2e12)
    assert choose_target("big", spec_target=spec) == "big"  # an explicit choice beats the spec's target
    for kwargs, fragment in (
        ({"name": "big", "params": 6e9}, "give --target NAME or --target-params/--target-tokens/--target-flops, not both"),
        ({"params": -1.0, "tokens": 1e9}, "--target-params must be positive (got -1)"),
        ({"params": 6e9}, "give both --target-params and --target-tokens, or --target-flops"),
        ({}, "no target: pass --target NAME"),
    ):
        with pytest.raises(CapcastError, match=re.escape(fragment)):
            choose_target(**kwargs)
    frame, spec_target = scores_for_forecast(scores=scores_files["csv"])
    assert spec_target is None and set(frame["model"]) >= {"big"}
    with pytest.raises(CapcastError, match="give exactly one of FAMILY.yaml or --scores FILE"):
        scores_for_forecast()


def test_plot_writes_one_png_per_task(scores_files, tmp_path, capsys) -> None:
    plots = tmp_path / "plots"
    code, _, err = run_cli(["forecast", "--scores", str(scores_files["parquet"]), "--target", "big", "--plot", str(plots)], capsys)
    assert code == 0, err
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert pngs == ["flat.png", "rising.png"]
    for png in plots.glob("*.png"):
        assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"


def test_backtest_json_shape(scores_files, capsys) -> None:
    code, out, err = run_cli(["backtest", "--scores", str(scores_files["csv"]), "--holdout-largest", "1",
                              "--methods", "auto,sigmoid,linear", "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report["methods"]) == {"auto", "sigmoid", "linear"}
    for name, scores in report["methods"].items():
        assert {"mae", "max_error", "coverage", "n", "unpredictable"} <= set(scores)
        assert scores["n"] + scores["unpredictable"] == 2  # every task is answered, with a number or a reason
    # rising gets a number from both; flat is refused by sigmoid, and auto answers it with persistence
    assert report["methods"]["sigmoid"]["n"] == 1 and report["methods"]["sigmoid"]["unpredictable"] == 1
    assert report["methods"]["auto"]["n"] == 2 and report["methods"]["auto"]["unpredictable"] == 0
    for name in ("auto", "sigmoid"):
        assert report["methods"][name]["mae"] < 5
    assert len(report["rows"]) == 6
    assert {"family", "model", "task", "metric", "method", "forecast", "lower", "upper", "actual", "status"} <= set(report["rows"][0])
    code, out, _ = run_cli(["backtest", "--scores", str(scores_files["csv"]), "--holdout-largest", "2", "--all-steps",
                            "--methods", "sigmoid", "--tasks", "rising", "--format", "json"], capsys)
    assert code == 0 and len(json.loads(out)["rows"]) == 6  # 2 held-out sizes x 3 checkpoints


PLUGIN = '''
from dataclasses import dataclass
import numpy as np
from capcast import hookimpl
from capcast.laws.base import Prediction

@dataclass(frozen=True)
class MeanFit:
    law: str
    params: dict
    cov: np.ndarray
    def predict(self, target, level=0.9):
        m = self.params["mean"]
        return Prediction(mean=m, lower=m - 0.01, upper=m + 0.01, level=level)
    def summary(self):
        return "mean of the fitting scores"

class MeanLaw:
    name = "mean-of-all"
    description = "third-party test law: the mean score"
    def fit(self, series):
        return MeanFit(law=self.name, params={"mean": float(np.mean(series.value))}, cov=np.zeros((1, 1)))

@hookimpl
def register_laws(register):
    register(MeanLaw())
'''


def test_third_party_law_from_plugins_dir(scores_files, tmp_path, capsys) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mean_law.py").write_text(PLUGIN)
    code, out, err = run_cli(["--plugins-dir", str(plugins), "forecast", "--scores", str(scores_files["csv"]), "--target", "big",
                              "--tasks", "rising", "--method", "mean-of-all", "--format", "json"], capsys)
    assert code == 0, err
    row = json.loads(out)["rows"][0]
    frame = pd.read_csv(scores_files["csv"])
    fit_values = frame[(frame.model != "big") & (frame.task == "rising") & (frame.metric == "acc")]["value"]
    assert row["law"] == "mean-of-all" and row["forecast"] == pytest.approx(fit_values.mean())


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


BAD_CASES = {
    "missing column": (lambda f: f.drop(columns=["params"]), [], "missing column(s) params"),
    "non-positive params": (lambda f: f.assign(params=f["params"].where(f["model"] != "s1", 0)), [], "params must be positive"),
    "nan value": (lambda f: f.assign(value=f["value"].where(f.index != 3, np.nan)), [], "column value has NaN"),
    "absent target": (lambda f: f, ["--target", "nosuch"], "target 'nosuch' is not a model"),
    "single fitting model": (lambda f: f[f["model"].isin(["s1", "big"])], [], "single fitting model size"),
    "unknown metric": (lambda f: f, ["--metric", "f1"], "metric 'f1' is not in the scores table"),
    "unknown task": (lambda f: f, ["--tasks", "nosuch"], "task(s) nosuch have no 'acc' scores"),
    "unknown law": (lambda f: f, ["--method", "nosuch"], "unknown law 'nosuch'"),
    "bad interval": (lambda f: f, ["--interval", "1.5"], "--interval must be between 0 and 1"),
    "store without a family": (lambda f: f, ["--store", "st", "--limit", "5"], "--store, --limit only apply when forecasting a FAMILY.yaml"),
    "device without a family": (lambda f: f, ["--device", "cpu"], "--device only applies when forecasting a FAMILY.yaml"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys) -> None:
    mutate, extra, fragment = BAD_CASES[case]
    path = _write(tmp_path, mutate(synthetic_table()))
    args = ["forecast", "--scores", str(path)] + (extra if "--target" in extra else ["--target", "big"] + extra)
    code, _, err = run_cli(args, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_backtest_bad_input_and_real_entry_point(tmp_path) -> None:
    path = _write(tmp_path, synthetic_table().drop(columns=["value"]))
    proc = subprocess.run([sys.executable, "-m", "capcast", "backtest", "--scores", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and "missing column(s) value" in lines[0]


def test_missing_scores_file_and_no_target(tmp_path, capsys) -> None:
    code, _, err = run_cli(["forecast", "--scores", str(tmp_path / "absent.csv"), "--target", "big"], capsys)
    assert code == 2 and "no such scores file" in err
    path = _write(tmp_path, synthetic_table())
    code, _, err = run_cli(["forecast", "--scores", str(path)], capsys)
    assert code == 2 and "no target" in err


@pytest.mark.slow
def test_forecast_family_yaml_runs_missing_evals_then_forecasts(tiny_family, offline_hf_env, tmp_path, capsys) -> None:
    spec = tmp_path / "family.yaml"
    spec.write_text(Path(tiny_family).read_text().replace("./", f"{Path(tiny_family).parent}/")
                    + "target:\n  name: tiny-xl\n  params: 5.0e7\n  tokens: 1.0e9\n")
    store = tmp_path / "store"
    args = ["forecast", str(spec), "--tasks", "capcast_add_mc", "--store", str(store), "--limit", "12",
            "--device", "cpu", "--format", "json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [(r["task"], r["model"], r["family"]) for r in rows] == [("capcast_add_mc", "tiny-xl", "tiny")]
    # random-init checkpoints carry no signal: the honest answer, with its reason
    assert rows[0]["status"] == "not predictable yet" and rows[0]["reason"]
    assert any(store.rglob("*.parquet"))
    code, out2, err = run_cli(args, capsys)  # resumable: nothing left to evaluate, same answer
    assert code == 0 and json.loads(out2)["rows"] == rows


def test_backtest_takes_the_schedules_of_a_family_spec(capsys, tmp_path):
    """`capcast backtest --schedules FAMILY.yaml`: ladder-schedule fits with the spec's learning-rate
    schedules; without them it refuses and names the option."""
    import io

    import pandas as pd

    from capcast.testing.cli import run_in_process

    root = Path(__file__).resolve().parents[2]
    base = ["backtest", "--scores", str(root / "benchmarks/data/miniladder_scores.csv"), "--methods", "ladder-schedule",
            "--tasks", "ref_facts", "--metric", "acc", "--workers", "1", "-f", "csv"]
    code, out, _ = run_in_process(base, capsys)
    assert code == 0
    without = pd.read_csv(io.StringIO(out))
    assert (without["status"] != "ok").all() and without["reason"].str.contains("--schedules FAMILY.yaml").all()
    code, out, _ = run_in_process(base + ["--schedules", str(root / "capcast/reference/ladder/ladder.yaml")], capsys)
    assert code == 0
    with_schedules = pd.read_csv(io.StringIO(out))
    assert len(with_schedules) == len(without)
    assert not with_schedules["reason"].fillna("").str.contains("no schedule").any()
    # it fitted: each row is a forecast, or one whose interval the width rule refused
    assert (with_schedules["forecast"].notna() | with_schedules["reason"].fillna("").str.contains("interval too wide")).all()
    no_schedules = tmp_path / "plain.yaml"
    import yaml

    spec = yaml.safe_load((root / "capcast/reference/ladder/ladder.yaml").read_text())
    spec.pop("schedules")
    no_schedules.write_text(yaml.safe_dump(spec))
    code, _, err = run_in_process(base + ["--schedules", str(no_schedules)], capsys)
    assert code == 2 and "has no schedules" in err
