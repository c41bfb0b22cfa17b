"""`capcast sample` counts checker exceptions and reports them; a checker that raises on every
sample of the first round stops the run with one line. Real sampling on a tiny real checkpoint."""

from __future__ import annotations

import json
import textwrap

import pytest

from capcast.passuntil.rounds import connect, export_samples_table
from capcast.testing import build_tiny_family

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent(
    '''
    import capcast
    from capcast.tasks.arithmetic import task_builder

    def first_char(sample, doc):
        if MODE == "always":
            return 1 / 0
        if doc["id"] == 0:
            raise KeyError("no field")
        return sample.strip()[:1] == str(doc["answer"])[:1]

    MODE = "doc0"

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="pu_raise", lm_eval_config=task_builder("add_gen", "pu_raise", digits=1, n=4),
                              kind="generate", checker=first_char))
    '''
)


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("pu-checker")
    spec = build_tiny_family(root / "family", sizes=("xs",))
    plugins = {}
    for mode in ("doc0", "always"):
        folder = root / f"plugins-{mode}"
        folder.mkdir()
        (folder / "pu_task.py").write_text(PLUGIN.replace('MODE = "doc0"', f'MODE = "{mode}"'))
        plugins[mode] = folder
    return spec, plugins


def cli(capsys, *args: str) -> tuple[int, str, str]:
    from capcast.cli.app import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def sample(family, mode: str, store) -> list[str]:
    spec, plugins = family
    return ["--plugins-dir", str(plugins[mode]), "sample", str(spec), "--tasks", "pu_raise", "--store", str(store),
            "--successes", "2", "--batch", "4", "--max-samples-per-instance", "8", "--batch-size", "16", "--device", "cpu"]


def test_checker_exceptions_are_counted_and_reported(family, tmp_path, capsys, offline_hf_env):
    store = tmp_path / "store"
    code, out, err = cli(capsys, *sample(family, "doc0", store))
    assert code == 0, err
    # doc 0 raises on each of its 8 samples (4 + 4 to the cap); they count as failures, the run goes on.
    header = [line for line in out.splitlines() if "errors" in line]
    assert header and "checker" in out  # the summary table has a checker-errors column
    row = next(line for line in out.splitlines() if line.startswith("│ tiny-xs"))
    assert row.rstrip("│ ").split("│")[-1].strip() == "8"
    assert "warning: tiny-xs x pu_raise: the checker raised on 8 samples (counted as failures); first: KeyError: 'no field'" in err
    manifest = json.loads((store / "passuntil" / "tiny" / "tiny-xs" / "pu_raise" / "run.json").read_text())
    assert manifest["checker_errors"] == 8 and manifest["allocation"] == "even-fixed-order"
    table = export_samples_table(store)
    assert (table["max_samples"] == 8).all() and not table["biased"].any()
    assert table.set_index("doc_id").loc[0, "n_correct"] == 0


def test_a_checker_that_always_raises_stops_the_run(family, tmp_path, capsys, offline_hf_env):
    store = tmp_path / "store"
    code, out, err = cli(capsys, *sample(family, "always", store))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: the checker of task 'pu_raise' raised on every one of the 16 samples of the first round on tiny-xs")
    assert "ZeroDivisionError: division by zero" in lines[0]
    with connect(store) as con:
        assert con.execute("SELECT count(*) FROM passuntil_samples").fetchone()[0] == 0  # nothing stored
