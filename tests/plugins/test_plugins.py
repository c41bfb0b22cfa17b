"""Plugin discovery: entry points, --plugins-dir files, and broken plugins that don't take capcast down."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from capcast.plugins.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO / "plugins" / "capcast-example-plugin"

GOOD_PLUGIN = '''
import capcast

@capcast.hookimpl
def register_tasks(register):
    register(capcast.Task(name="dir_task", lm_eval_config={"task": "dir_task"}, chance=0.5))

class ConstantLaw:
    """Forecasts the last observed value (a deliberately naive third-party law)."""
    name = "constant"
    description = "last observed value"
    def fit(self, series):
        raise NotImplementedError

@capcast.hookimpl
def register_laws(register):
    register(ConstantLaw())
'''

BROKEN_IMPORT = "import capcast\nraise RuntimeError('boom at import')\n"
BROKEN_REGISTER = '''
import capcast

@capcast.hookimpl
def register_tasks(register):
    raise ValueError("cannot build my task")
'''
WRONG_TYPE = '''
import capcast

@capcast.hookimpl
def register_tasks(register):
    register({"name": "not a Task"})
'''


def run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CAPCAST_PLUGINS_DIR"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "capcast", *args], capture_output=True, text=True, env=env, timeout=120)


def make_dist_info(site: Path) -> None:
    """A real installed-distribution record (what pip writes) on a temporary sys.path entry."""
    dist = site / "capcast_example_plugin-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: capcast-example-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[capcast]\nexample = capcast_example_plugin\n")


def test_entry_point_plugin_is_discovered(tmp_path: Path) -> None:
    make_dist_info(tmp_path)
    pythonpath = os.pathsep.join([str(tmp_path), str(EXAMPLE_PLUGIN)])
    proc = run_cli("plugins", env_extra={"PYTHONPATH": pythonpath})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "example_opposites" in line)
    assert "entry point capcast_example_plugin" in row and " ok " in row


def test_entry_point_plugin_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist_info(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry()
    task = registry.tasks["example_opposites"]
    assert task.chance == 0.25
    assert Path(task.lm_eval_config["dataset_kwargs"]["data_files"]["test"]).is_file()
    assert any(p.source.startswith("entry point") and p.tasks == ["example_opposites"] for p in registry.plugins)


def test_plugins_dir_loads_plain_files_and_broken_ones_are_reported(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD_PLUGIN)
    (tmp_path / "bad_import.py").write_text(BROKEN_IMPORT)
    (tmp_path / "bad_register.py").write_text(BROKEN_REGISTER)
    (tmp_path / "wrong_type.py").write_text(WRONG_TYPE)
    registry = load_registry(tmp_path)
    assert registry.tasks["dir_task"].chance == 0.5
    assert "constant" in registry.laws
    broken = {b.name: b.error for b in registry.broken}
    assert broken == {
        "bad_import": "RuntimeError: boom at import (at bad_import.py:2)",
        "bad_register": "ValueError: cannot build my task (at bad_register.py:6)",
        "wrong_type": "TypeError: register_tasks got dict, expected capcast.Task",
    }
    # Built-ins still load beside the broken plugins.
    assert any(p.source == "builtin" for p in registry.plugins)


def test_cli_lists_broken_plugin_and_keeps_working(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GOOD_PLUGIN)
    (tmp_path / "bad_import.py").write_text(BROKEN_IMPORT)
    for args, env in (
        (["--plugins-dir", str(tmp_path), "plugins"], None),
        (["plugins"], {"CAPCAST_PLUGINS_DIR": str(tmp_path)}),
    ):
        proc = run_cli(*args, env_extra=env)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        broken_row = next(line for line in proc.stdout.splitlines() if line.startswith("broken plugin bad_import"))
        assert "broken" in broken_row and "boom at import" in broken_row
        good_row = next(line for line in proc.stdout.splitlines() if "dir_task" in line)
        assert "constant" in good_row


def test_missing_plugins_dir_is_a_one_line_error(tmp_path: Path) -> None:
    proc = run_cli("--plugins-dir", str(tmp_path / "nope"), "plugins")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "plugins directory" in proc.stderr
