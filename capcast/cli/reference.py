"""CLI commands for the reference mini-ladder: `capcast demo` and `capcast reference-family ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from capcast.cli.common import console, pct, split_list
from capcast.errors import CapcastError

reference_app = typer.Typer(help="The reference mini-ladder: build (train) it, verify its weights.", no_args_is_help=True)


def _fmt(value: float, metric: str) -> str:
    if value != value:  # NaN
        return ""
    return f"{value:.4f}" if metric == "pass_rate" and 0 < value < 0.01 else f"{value:.3f}"



def demo_command(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the store and the plots."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated reference tasks (default: all)."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Comma-separated checkpoint names of ladder.yaml (default: family.yaml's and its target, what the steps use)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Items per task (default: all)."),
    ladder: Optional[Path] = typer.Option(None, "--ladder", help="A built ladder folder (default: the committed one)."),
    forecast: bool = typer.Option(True, "--forecast/--no-forecast", help="Forecast the target from family.yaml's checkpoints."),
    passuntil: bool = typer.Option(True, "--passuntil/--no-passuntil", help="Run the short PassUntil measurement on ref_add3."),
    passuntil_items: int = typer.Option(24, "--passuntil-items", min=1, help="PassUntil: the first N items of ref_add3."),
    passuntil_cap: int = typer.Option(2048, "--passuntil-cap", min=1, help="PassUntil: cap on samples per item."),
    backtest: bool = typer.Option(True, "--backtest/--no-backtest", help="Backtest the same method one size down."),
    cod: bool = typer.Option(True, "--cod/--no-cod", help="COD's predictable subset per task with per-instance records."),
    leaderboard: bool = typer.Option(True, "--leaderboard/--no-leaderboard", help="Build the mini-ladder leaderboard site."),
) -> None:
    """Evaluate the mini-ladder; forecast its target beside the actual; backtest; PassUntil; COD; build the leaderboard."""
    from capcast.reference.demo import PassUntilSettings, run_demo

    settings = PassUntilSettings(limit=passuntil_items, cap=passuntil_cap) if passuntil else None
    result = run_demo(
        out, ladder_dir=ladder, tasks=split_list(tasks), checkpoints=split_list(checkpoints), limit=limit, console=console,
        forecast=forecast, passuntil=settings, backtest=backtest, cod=cod, leaderboard=leaderboard,
    )
    wide = Console(width=max(console.width, 170))  # every column, even when stdout is not a terminal (make demo | tee)
    def say(line: str, heading: str = "") -> None:  # a bold heading; the rest as plain text (reasons may hold brackets)
        if heading:
            console.print(f"\n[bold]{heading}[/]", end="", highlight=False)
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    say(f": {len(result.table)} checkpoints x {len(result.metrics)} tasks in {result.eval_seconds:.0f} s "
        f"(store {result.store}); the final checkpoint of each run:", "1. measured")
    wide.print(scores_table(result))
    say(f"every checkpoint: {result.scores_csv}; plots: {out / 'plots'} ({len(result.plots)} PNG)")
    if forecast:
        say(" of the target from the smaller sizes only, beside its actual score:", "2. forecast")
        wide.print(forecast_table(result))
        say(f"forecast plots: {out / 'forecast-plots'} ({len(result.forecast_plots)} PNG)")
    if result.backtest is not None:
        say(": " + "\n".join(backtest_lines(result.backtest)), "3. backtest")
    if result.passuntil:
        say(": rates greedy decoding cannot see (greedy scores 0 on these checkpoints):", "4. PassUntil")
        wide.print(passuntil_table(result))
    if result.cod:
        say(" (Clustering-On-Difficulty, docs/cod.md): the predictable subset, fitted on family.yaml's sizes:", "5. COD")
        for line in cod_lines(result.cod):
            say("  " + line)
        say(f"COD results: {result.cod_dir} (every cluster and why it was dropped: capcast cluster show --out {result.cod_dir})")
    if result.leaderboard is not None or result.leaderboard_reason:
        where = f"{result.leaderboard} (open it in a browser; it needs no network)" if result.leaderboard else f"not built: {result.leaderboard_reason}"
        say(f": {where}", "6. leaderboard")
    say("", "")
    say("time per step (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()) + f"; total {result.seconds:.1f}")
    places = [f"plots {out / 'plots'}"] + ([f"forecast plots {out / 'forecast-plots'}"] if forecast else [])
    places += [f"COD {result.cod_dir}"] if result.cod else []
    places += [f"site {result.leaderboard}"] if result.leaderboard else []
    say("where: " + "; ".join(places))


def scores_table(result) -> Table:
    """The final evaluated checkpoint of each run (seed-0 runs only when there are many), scores by task."""
    table = Table(title=f"capcast-mini: score per checkpoint (rows by training compute); target = {result.target}")
    table.add_column("checkpoint", no_wrap=True)
    table.add_column("params", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("FLOPs", justify="right")
    tasks_shown = [c for c in result.table.columns if c in result.metrics]
    for task in tasks_shown:
        table.add_column(f"{task.removeprefix('ref_')}\n{result.metrics[task]}", justify="right")
    runs = result.scores.drop_duplicates("model").set_index("model")["run"]  # the store's run of each checkpoint
    rows = result.table.assign(run=result.table["model"].map(runs))
    finals = rows[rows["tokens"] == rows.groupby("run")["tokens"].transform("max")]
    if len(finals) > 5:
        finals = finals[finals["run"].str.endswith("-s0") | (finals["model"] == result.target)]
    for _, row in finals.iterrows():
        name = f"[bold red]{row['model']}[/]" if row["model"] == result.target else row["model"]
        cells = [_fmt(row[t], result.metrics[t]) for t in tasks_shown]
        table.add_row(name, f"{row['params']:,.0f}", f"{row['tokens']:,.0f}", f"{row['flops']:.2e}", *cells)
    return table


def backtest_lines(summary) -> list[str]:
    """The demo's backtest in a few lines: what was fitted and held out, answered, MAE, coverage, why not."""
    if summary.reason:
        return [f"not run: {summary.reason}"]
    score = summary.score
    sizes = ", ".join(dict.fromkeys(n.split("-")[0] for n in summary.fitted))
    lines = [f"the same method (auto), fitted on {sizes} ({len(summary.fitted)} checkpoints), forecasting the held-out "
             f"{', '.join(summary.held_out)} on {len({r['task'] for r in summary.rows})} tasks:"]
    total = score.n + score.unpredictable + score.failed
    numbers = (f"MAE {score.mae:.1f} points (bias {score.bias:+.1f}), coverage of the 90% intervals {100 * score.coverage:.0f}%, median width "
               f"{score.median_width:.1f} points" if score.n else "no numeric forecast to score")
    lines.append(f"  answered {score.n} of {total}; {numbers}")
    refusals = [r for r in summary.rows if r["status"] != "ok"]
    if refusals:
        by_task = {}
        for r in refusals:
            by_task.setdefault(r["task"], r["reason"])
        shown = "; ".join(f"{t}: {reason}" for t, reason in list(by_task.items())[:3])
        lines.append(f"  not predictable yet ({len(refusals)}): {shown}" + (" ..." if len(by_task) > 3 else ""))
    return lines


def cod_lines(rows) -> list[str]:
    """One line per task: COD's subset and forecast, or why COD refused or does not apply."""
    lines = []
    for row in rows:
        if row.status == "skipped":
            lines.append(f"{row.task}: skipped: {row.reason}")
            continue
        head = (f"{row.task} ({row.metric}): subset {row.subset} of {row.instances} instances, {row.kept} of {row.clusters} "
                f"clusters kept" if row.metric else f"{row.task}")
        if row.status == "ok":
            inside = row.actual is not None and row.lower <= row.actual <= row.upper
            verdict = "" if row.actual is None else (", inside the interval" if inside else ", OUTSIDE the interval")
            lines.append(f"{head}; forecast {pct(row.forecast)} ({pct(row.lower)} to {pct(row.upper)}), actual {pct(row.actual)}{verdict}")
        else:  # COD lists every cluster it dropped; the first part says why, `capcast cluster show` the rest
            reason = row.reason if len(row.reason) <= 160 else row.reason[:157].rstrip() + "..."
            lines.append(f"{head}; {row.status}: {reason}")
    return lines


def forecast_table(result) -> Table:
    """The demo's forecast rows: law, forecast, interval, actual, status and reason (points x 100)."""
    fitted = result.fit_checkpoints
    sizes = list(dict.fromkeys(name.split("-")[0] for name in fitted))  # fit_checkpoints come in family.yaml's order
    table = Table(title=(
        f"forecast of {result.target} from {len(fitted)} checkpoints of family.yaml ({', '.join(sizes) or 'none evaluated'}), "
        "method auto, 90% interval, scores x 100"
    ))
    for col in ("task", "metric", "law chosen", "forecast", "90% interval", "actual", "status / reason"):
        table.add_column(col, justify="right" if col in ("forecast", "90% interval", "actual") else "left",
                         no_wrap=col in ("task", "metric"), overflow="fold")
    for row in result.forecasts:
        interval = f"{pct(row.lower)} to {pct(row.upper)}" if row.forecast is not None else ""
        if row.status == "ok":
            inside = row.actual is not None and row.lower <= row.actual <= row.upper
            status = "ok" + ("" if row.actual is None else (", actual inside" if inside else ", [yellow]actual outside[/]"))
        else:
            status = f"[yellow]{row.status}[/]: {escape(row.reason)}"
        table.add_row(row.task, row.metric, row.law, pct(row.forecast), interval, pct(row.actual), status)
    return table


def passuntil_table(result) -> Table:
    """Greedy accuracy beside the measured PassUntil pass rate, per sampled checkpoint."""
    s = result.passuntil_settings
    table = Table(title=(
        f"ref_add3: greedy vs PassUntil (first {s.limit} items, r = {s.successes}, cap {s.cap:,} samples per item; "
        "unbiased estimate, 90% interval)"
    ))
    for col in ("checkpoint", "params", "greedy acc", "PassUntil pass rate", "90% interval", "items passed", "samples", "seconds"):
        table.add_column(col, justify="left" if col == "checkpoint" else "right", no_wrap=True)
    for row in result.passuntil:
        table.add_row(
            row.checkpoint, f"{row.params:,.0f}", "" if row.greedy is None else f"{row.greedy:.3f}", f"{row.pass_rate:.2e}",
            f"{row.lower:.2e} to {row.upper:.2e}", f"{row.passed}/{row.instances}", f"{row.samples:,}", f"{row.seconds:.0f}",
        )
    return table


@reference_app.command("build")
def build_command(
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoints, manifest.json and family specs into."),
    jobs: int = typer.Option(2, "--jobs", help="Training processes in parallel (does not change the weights)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare the hashes with the committed manifest."),
    sizes: Optional[str] = typer.Option(None, "--sizes", help=(
        "Comma-separated sizes to train into the already built ladder in --out; its other members keep their weights.")),
) -> None:
    """Train the mini-ladder from scratch on CPU (deterministic; about 15 minutes on 2 cores)."""
    from capcast.reference.ladder import build_ladder, compare_manifests, extend_ladder, load_manifest

    log = lambda line: console.print(line, highlight=False)  # noqa: E731
    if sizes:
        manifest = extend_ladder(out, [s.strip() for s in sizes.split(",") if s.strip()], jobs=jobs, log=log)
        console.print(f"{out}: added sizes {sizes} in {manifest['extended'][-1]['seconds']:.0f} s; "
                      f"{len(manifest['checkpoints'])} checkpoints in all")
    else:
        manifest = build_ladder(out, jobs=jobs, log=log)
        console.print(f"built {len(manifest['checkpoints'])} checkpoints into {out} in {manifest['build_seconds']:.0f} s")
    if not check:
        return
    differ = compare_manifests(manifest, load_manifest())
    if differ:
        raise CapcastError(
            f"{len(differ)} of {len(manifest['checkpoints'])} checkpoints differ from the committed hashes "
            f"(first: {differ[0]}); expected with another torch version or CPU kind, see docs/reference-family.md"
        )
    console.print("all weights hashes match the committed manifest: the build reproduced bit for bit")


@reference_app.command("verify")
def verify_command(
    ladder: Optional[Path] = typer.Option(None, "--ladder", help="A built ladder folder (default: the committed one)."),
) -> None:
    """Check every checkpoint's weights against the sha256 in the ladder's manifest.json."""
    from capcast.reference.ladder import check_ladder, load_manifest

    folder = check_ladder(ladder)
    console.print(f"{folder}: all {len(load_manifest(folder)['checkpoints'])} checkpoints match manifest.json")
