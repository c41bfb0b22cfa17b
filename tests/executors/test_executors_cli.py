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
