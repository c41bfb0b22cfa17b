"""``capcast leaderboard build``: forecast and backtest results in, a static site out.

    build_leaderboard(["forecast.json", "backtest.json"], Path("site"), scores=["scores.csv"])

Writes ``index.html`` (methods ranked by backtest MAE; registered and resolved forecasts),
``methods.html``, one ``family-*.html`` per family, ``assets/`` (the sorting script and the style
sheet), ``sources/`` (copies of the inputs) and ``registry.jsonl`` (a copy of the registry). No
page loads anything from outside the folder; the pages work from ``file://``.

Nothing half-written is left in DIR: every input is read and checked first, the site is built in
a temporary folder beside DIR and swapped in by renaming. A DIR that exists and was not built by
this command is never replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from capcast.errors import CapcastError
from capcast.leaderboard.inputs import ResultFile, read_result, table_sha256
from capcast.leaderboard.pages import family_pages, published_rows, slug
from capcast.leaderboard.registry import Registry, capcast_version, load_registry, new_registrations
from capcast.leaderboard.stats import DRAWS, SEED, method_figures, per_family

MARKER = ".capcast-leaderboard"
DEFAULT_TITLE = "capcast forecast leaderboard"
REGISTRY_NAME = "registry.jsonl"


def default_registry(out: Path) -> Path:
    """The registry's default place: ``registry.jsonl`` beside the site folder, in its source folder."""
    return Path(out).resolve().parent / REGISTRY_NAME


def environment() -> Environment:
    # autoescape everywhere (HTML and the SVG macros alike): data never becomes markup
    return Environment(loader=PackageLoader("capcast.leaderboard", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CapcastError(f"--out {out} is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise CapcastError(f"--out {out} is a folder this command did not build; give a new or empty folder")


def _read_scores(scores) -> pd.DataFrame | None:
    from capcast.tables.scores import read_scores

    frames = [read_scores(s) for s in scores or []]  # paths or DataFrames
    return pd.concat(frames, ignore_index=True) if frames else None


def build_leaderboard(results: list[Path | dict], out: Path, *, scores: list[Path | pd.DataFrame] | None = None,
                      registry: Path | None = None, title: str = DEFAULT_TITLE) -> Path:
    """Build the site into ``out`` and return its ``index.html``.

    ``results``: forecast/backtest JSON files (or their parsed dicts). ``scores``: scores tables
    the charts take checkpoint points and target compute from (optional). ``registry``: the
    pre-registration file (default: ``registry.jsonl`` beside ``out``); forecasts of unknown
    actual are registered in it, once each."""
    out = Path(out)
    if not results:
        raise CapcastError("no results given; pass --from FILE (the JSON of `capcast forecast` or `capcast backtest`)")
    _check_out(out)
    files = [read_result(r, name=f"result-{i + 1}.json") for i, r in enumerate(results)]
    table = _read_scores(scores)
    registry_path = Path(registry) if registry is not None else default_registry(out)
    reg = load_registry(registry_path)
    pending = reg.append(new_registrations(reg, files, None if table is None else table_sha256(table)), write=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _render(work, files, table, reg, title)
        if pending:
            (work / REGISTRY_NAME).write_text((registry_path.read_text() if registry_path.exists() else "") + pending)
        reg.write(pending)  # the inputs and the pages are sound: now the registration is made
        os.chmod(work, 0o755)
        _swap(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out / "index.html"


def _swap(work: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _render(work: Path, files: list[ResultFile], table: pd.DataFrame | None, reg: Registry, title: str) -> None:
    rows = published_rows(files, reg)
    backtest = [r for r in rows if r["kind"] == "backtest"]
    families = family_pages(rows, table)
    sources = []
    (work / "sources").mkdir()
    for i, f in enumerate(files, start=1):
        name = f"{i:02d}-{slug('', f.path.stem)}.json"
        if f.path.is_file():
            shutil.copyfile(f.path, work / "sources" / name)
        sources.append({"name": f"sources/{name} (from {f.path.name})", "kind": f.kind, "rows": len(f.rows), "sha256": f.sha256,
                        "interval": "not recorded" if f.interval is None else f"{100 * f.interval:g}%"})
    if reg.path.exists() and not (work / REGISTRY_NAME).exists():
        shutil.copyfile(reg.path, work / REGISTRY_NAME)
    site = {"title": title, "version": capcast_version(), "seed": SEED, "draws": DRAWS, "sources": sources,
            "families": [{"name": p["name"], "href": p["href"], "tasks": len(p["tasks"]), "rows": p["rows"]} for p in families],
            "registry": {"name": reg.path.name, "lines": reg.lines, "head": reg.last_line_sha} if reg.lines else None}
    env = environment()
    levels = sorted({f.interval for f in files if f.kind == "backtest" and f.interval is not None})
    unrecorded = any(f.interval is None for f in files if f.kind == "backtest")
    level = ", ".join(f"{100 * v:g}%" for v in levels) + (" and " if levels and unrecorded else "")
    level += "a level the backtest JSON does not record (capcast's default is 90%)" if unrecorded else ""
    registered = [r for r in rows if r["kind"] in ("registered", "superseded") and r["actual"] is None]
    resolved = [r for r in rows if r["actual"] is not None and r["id"]]
    pages = {
        "index.html": env.get_template("index.html").render(
            site=site, page="index", ranking=method_figures(backtest), registered=registered, resolved=resolved,
            resolved_summary=_resolved_summary(resolved), backtest_level=level or "-",
            backtest_targets=len({(r["family"], r["model"], r["task"], r["metric"], r["step"]) for r in backtest}),
            backtest_sources=sum(f.kind == "backtest" for f in files)),
        "methods.html": env.get_template("methods.html").render(site=site, page="methods", overall=method_figures(backtest),
                                                                by_family=per_family(backtest)),
    }
    for p in families:
        pages[p["href"]] = env.get_template("family.html").render(site=site, page=p["href"], family=p["name"], tasks=p["tasks"])
    for name, html in pages.items():
        (work / name).write_text(html, encoding="utf-8")
    assets = work / "assets"
    assets.mkdir()
    for item in resources.files("capcast.leaderboard").joinpath("assets").iterdir():
        if item.name.endswith((".js", ".css")):
            (assets / item.name).write_bytes(item.read_bytes())
    (work / MARKER).write_text(json.dumps({"built_by": "capcast leaderboard build", "capcast_version": site["version"]}) + "\n")


def _resolved_summary(resolved: list[dict]) -> str:
    scored = [r for r in resolved if r["error"] is not None and r["kind"] != "superseded"]
    if not scored:
        return f"{len(resolved)} resolved; none of the current ones had a number to score (each says why)."
    mae = sum(r["error"] for r in scored) / len(scored)
    covered = sum(r["lower"] <= r["actual"] <= r["upper"] for r in scored)
    return (f"{len(resolved)} resolved; {len(scored)} current forecast(s) with a number: MAE {mae:.2f} points, "
            f"{covered} of {len(scored)} intervals hold the actual.")
