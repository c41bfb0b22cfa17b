"""`capcast sample` and `capcast samples` end to end on tiny real checkpoints through lm-eval."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from capcast.cli.app import app
from capcast.passuntil.rounds import connect
from capcast.tables.samples import read_samples
from capcast.testing import build_tiny_family

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent(
    '''
    import capcast
    from capcast.tasks.arithmetic import task_builder

    def first_char(sample, doc):
        # Untrained models hit the first digit of a 1-digit sum now and then; the checker of one doc
        # crashes (when CRASH_ON is set), which must count as a failure and not stop the run.
        if doc["id"] == CRASH_ON:
            raise RuntimeError("checker bug")
        return sample.strip()[:1] == str(doc["answer"])[:1]

    CRASH_ON = None

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="pu_first_digit", lm_eval_config=task_builder("add_gen", "pu_first_digit", digits=1, n=6),
                              kind="generate", checker=first_char))
    '''
)


def invoke(args):
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pu")
    spec = build_tiny_family(root / "family", sizes=("xs", "s"))
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "pu_task.py").write_text(PLUGIN)
    return root, spec, plugins


def test_sample_store_resume_and_export(setup):
    root, spec, plugins = setup
    store = root / "store"
    base = ["--plugins-dir", str(plugins), "sample", str(spec), "--tasks", "pu_first_digit", "--store", str(store),
            "--successes", "2", "--batch", "4"]
    out = invoke(base + ["--max-samples-per-instance", "64"])
    assert "tiny-xs" in out and "tiny-s" in out
    with connect(store) as con:
        first = con.execute("SELECT checkpoint, doc_id, count(*) AS n, sum(correct::INT) AS c FROM passuntil_samples GROUP BY ALL").df()
    assert len(first) == 12  # 2 checkpoints x 6 instances, every sample stored
    assert ((first["c"] >= 2) | (first["n"] == 64)).all()  # each instance resolved or at its cap
    assert ((first["c"] >= 2) & (first["n"] < 64)).any()  # at least one solved early, and so left the rounds

    # A second run with a higher cap resumes from the stored rounds: nothing is redrawn or lost.
    invoke(base + ["--max-samples-per-instance", "256"])
    with connect(store) as con:
        second = con.execute("SELECT checkpoint, doc_id, count(*) AS n, sum(correct::INT) AS c FROM passuntil_samples GROUP BY ALL").df()
    merged = first.merge(second, on=["checkpoint", "doc_id"], suffixes=("_1", "_2"))
    assert (merged["n_2"] >= merged["n_1"]).all()
    solved_before = merged["c_1"] >= 2
    assert (merged.loc[solved_before, "n_2"] == merged.loc[solved_before, "n_1"]).all()
    assert (merged.loc[~solved_before, "n_2"] > merged.loc[~solved_before, "n_1"]).all()

    exported = root / "samples.csv"
    invoke(["samples", "--store", str(store), "-o", str(exported)])
    table = read_samples(exported)
    assert len(table) == 12 and set(table["model"]) == {"tiny-xs", "tiny-s"}
    assert (table["target_successes"] == 2).all() and (table["n_correct"] <= 2).all()


def test_crashing_checker_counts_as_failure(setup):
    root, spec, plugins = setup
    crash_plugins = root / "crash_plugins"
    crash_plugins.mkdir(exist_ok=True)
    (crash_plugins / "pu_task.py").write_text(PLUGIN.replace("CRASH_ON = None", "CRASH_ON = 0"))
    store = root / "crash_store"
    invoke(["--plugins-dir", str(crash_plugins), "sample", str(spec), "--tasks", "pu_first_digit", "--store", str(store),
            "--successes", "1", "--max-samples-per-instance", "16"])
    with connect(store) as con:
        docs = con.execute("SELECT checkpoint, doc_id, count(*) AS n, sum(correct::INT) AS c FROM passuntil_samples GROUP BY ALL").df()
    crashed = docs[docs["doc_id"] == 0]
    assert len(crashed) == 2 and (crashed["c"] == 0).all() and (crashed["n"] == 16).all()  # all failures, sampled to the cap
    assert len(docs) == 12  # and the other instances of both checkpoints were sampled as usual
