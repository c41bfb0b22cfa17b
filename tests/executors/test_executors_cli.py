"""The executor options fail in one line, before any work, where they cannot be honoured."""

from __future__ import annotations

import sys

import pytest

from capcast.errors import CapcastError
from capcast.executors.grid import make_executor
from capcast.testing.cli import run_in_process


@pytest.mark.parametrize("name, module, extra", [("ray", "ray", "ray"), ("slurm", "submitit", "slurm")])
def test_a_missing_engine_names_the_extra_to_install(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(CapcastError, match=rf"--executor {name} needs {module}.*pip install 'capcast\[{extra}\]'"):
        make_executor(name)


def test_local_with_one_worker_is_the_in_process_loop_and_more_workers_a_pool():
    assert make_executor("local") is None
    pool = make_executor("local", workers=3)
    assert pool.name == "local" and pool.workers == 3


def test_an_unknown_executor_is_one_line(capsys, tmp_path):
    spec = tmp_path / "family.yaml"
    spec.write_text("family: f\ncheckpoints: []\n")
    code, out, err = run_in_process(["eval", str(spec), "--tasks", "capcast_add_mc", "--executor", "kubernetes"], capsys)
    assert code == 2 and "--executor 'kubernetes' is not one of local, ray, slurm" in err and "Traceback" not in err


def _spec(tmp_path):
    spec = tmp_path / "family.yaml"
    (tmp_path / "ckpt").mkdir()
    spec.write_text("family: f\ncheckpoints:\n  - {name: a, model: ./ckpt, params: 1.0e6, tokens: 2.0e7}\n")
    return spec


@pytest.mark.parametrize("command, extra, words", [
    ("eval", ["--executor", "local", "--ray-address", "auto"], "--ray-address does not apply to --executor local (only to --executor ray)"),
    ("eval", ["--executor", "ray", "--workers", "2"], "--workers does not apply to --executor ray (only to --executor local)"),
    ("eval", ["--slurm-partition", "gpu", "--cpus-per-job", "4"], "--cpus-per-job, --slurm-partition do not apply to --executor local"),
    ("sample", ["--executor", "slurm", "--ray-address", "auto"], "--ray-address does not apply to --executor slurm"),
    ("sample", ["--executor", "local", "--cpus-per-job", "2"], "--cpus-per-job does not apply to --executor local (only to --executor ray or slurm)"),
    ("forecast", ["--workers", "2", "--slurm-time", "10"], "--slurm-time does not apply to --executor local"),
])
def test_an_option_the_executor_does_not_use_is_refused_in_one_line(capsys, tmp_path, command, extra, words):
    task = "capcast_add_gen" if command == "sample" else "capcast_add_mc"
    code, out, err = run_in_process([command, str(_spec(tmp_path)), "--tasks", task, "--store", str(tmp_path / "store"), *extra], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "store").exists()  # refused before any work


def test_the_executor_of_a_forecast_from_a_table_is_refused(capsys, tmp_path):
    table = tmp_path / "scores.csv"
    table.write_text("family,model,task,metric,value\n")
    code, _, err = run_in_process(["forecast", "--scores", str(table), "--target", "x", "--executor", "local", "--workers", "2"], capsys)
    assert code == 2 and "--executor only applies when forecasting a FAMILY.yaml" in err
