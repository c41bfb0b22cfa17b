"""`capcast leaderboard build --store DIR`: a record store's scores, backtested and published,
on a real store of tiny real checkpoints."""

from __future__ import annotations

import pytest

from capcast.testing.cli import run_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tiny_family, tmp_path_factory):
    from capcast.evaluation.runner import evaluate_family

    path = tmp_path_factory.mktemp("lb-store") / "store"
    evaluate_family(tiny_family, ["capcast_add_mc"], path, limit=8, batch_size=8, device="cpu", progress=False)
    return path


def test_a_store_is_backtested_and_published(store, tmp_path, capsys, offline_hf_env) -> None:
    out = tmp_path / "site"
    code, _, err = run_in_process(["leaderboard", "build", "--store", str(store), "--out", str(out),
                                   "--methods", "sigmoid,linear"], capsys)
    assert code == 0, err
    assert (out / "index.html").is_file() and f"wrote the leaderboard to {out / 'index.html'}" in err
    methods = (out / "methods.html").read_text()
    assert "sigmoid" in methods and "linear" in methods and "auto" not in methods  # the methods asked for, only
    assert list(out.glob("family-tiny*.html")), sorted(p.name for p in out.iterdir())  # the tiny family has its page


@pytest.mark.parametrize("args, message", [
    ([], "give --from FILE (the JSON of `capcast forecast` or `capcast backtest`) or --store DIR"),
    (["--from", "x.json", "--methods", "sigmoid"], "--methods applies with --store only"),
])
def test_build_without_a_source_or_with_a_stray_option_is_one_line(args, message, tmp_path, capsys) -> None:
    code, _, err = run_in_process(["leaderboard", "build", "--out", str(tmp_path / "site"), *args], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "site").exists()
