"""capcast works from an installed wheel, not only from the checkout: task files and plugins ship."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_carries_plugins_and_task_files_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("capcast-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("capcast/cli/app.py", "capcast/laws/base.py", "capcast/plugins/builtin/local_tasks.py", "capcast/tasks/arithmetic.py"):
        assert expected in names
    # The reference mini-ladder's weights, tokenizers, manifest and specs ship too.
    ladder = REPO / "capcast" / "reference" / "ladder"
    for path in ladder.rglob("*"):
        if path.is_file():
            assert f"capcast/reference/ladder/{path.relative_to(ladder).as_posix()}" in names
    # Every task file of the checkout's capcast/tasks/ room is in the wheel.
    task_files = list((REPO / "capcast" / "tasks").glob("*.yaml"))
    assert task_files
    for path in task_files:
        assert f"capcast/tasks/{path.name}" in names

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    probe = (
        "import capcast, capcast.tasks as capcast_tasks, pathlib;"
        "from capcast.plugins.registry import load_registry;"
        "r = load_registry();"
        "assert not r.broken, r.broken;"
        "task = r.tasks['capcast_add_mc'];"
        "config = task.lm_eval_config(pathlib.Path('data'));"
        "from capcast.reference.ladder import default_ladder_dir, verify_ladder;"
        "assert str(default_ladder_dir()).startswith(str(pathlib.Path(capcast.__file__).parent)) and verify_ladder() == [];"
        "print(capcast.__file__); print(capcast_tasks.__file__); print(sorted(r.tasks)); print(config['dataset_kwargs'])"
    )
    # The unzipped wheel comes first on sys.path, ahead of the editable checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=workdir, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    capcast_file, tasks_file, task_names, data_files = out.stdout.splitlines()
    assert capcast_file.startswith(str(site)) and tasks_file.startswith(str(site))
    assert {"capcast_add_mc", "capcast_compare_mc", "capcast_add_gen"} <= set(eval(task_names))
    assert str(workdir / "data") in data_files
