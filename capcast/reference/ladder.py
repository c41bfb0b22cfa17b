"""The reference mini-ladder: its members, its build, its manifest and spec files, its check.

Layout of a built ladder folder::

    manifest.json        recipe, versions, and per checkpoint: params, tokens, step, sha256
    ladder.yaml          family spec with every checkpoint (plots, scores table)
    family.yaml          backtest spec: the target (TARGET_SIZE's final seed-0 checkpoint) and
                         every seed-0 checkpoint of the sizes below it (forecast it, compare)
    <checkpoint>/        transformers checkpoint (safetensors + character tokenizer)

Tokens grow with model size (from 1.1x to 2.5x per size step) so the ladder rises with compute; equal
wall-clock per model would give an inverse ladder (see docs/reference-family.md).
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Callable

import yaml

from capcast.errors import CapcastError
from capcast.reference.train import ROW_CHARS, MemberSpec, SavedCheckpoint, file_weights_sha256, train_member

FAMILY_NAME = "capcast-mini"
SEEDS = (0, 1)
# (size, hidden, layers, heads, ffn, training tokens)
SIZES = (
    ("xs", 24, 2, 4, 64, 1_000_000),
    ("s", 32, 3, 4, 96, 2_000_000),
    ("sm1", 40, 3, 4, 112, 2_500_000),
    ("sm2", 48, 3, 4, 112, 3_200_000),
    ("sm3", 48, 3, 4, 136, 3_600_000),
    ("m", 48, 3, 4, 160, 4_000_000),
    ("l", 64, 4, 4, 240, 10_000_000),
)
# The backtest target: m's final seed-0 checkpoint, 1.25x the compute of the largest fitting size
# (sm3). The skills switch on between s and m (copy, reverse, sort, 2-digit addition) and between
# m and l (carry, 3-digit addition); sm1, sm2 and sm3 sit inside the first window, so a fit on xs
# to sm3 sees them rise. At l's final checkpoint four tasks score 1.000, which no interval of a
# law with asymptote 1 covers; l, above the target, is never fitted (docs/reference-family.md).
TARGET_SIZE, TARGET_SEED = "m", 0
# Part of the recipe: float sums depend on how work is split across threads. One thread per
# member also keeps a shared 2-core machine fast (two threads fighting other processes for two
# cores ran up to 20x slower); members train in parallel processes instead.
THREADS = 1


def ladder_members(sizes=SIZES, seeds=SEEDS) -> list[MemberSpec]:
    return [
        MemberSpec(size=size, hidden=h, layers=n, heads=heads, ffn=ffn, tokens=tokens, seed=seed)
        for size, h, n, heads, ffn, tokens in sizes
        for seed in seeds
    ]


def tiny_members() -> list[MemberSpec]:
    """A seconds-long version of the recipe (two sizes, one seed) for tests."""
    return ladder_members(sizes=(("xs", 24, 2, 4, 64, 40_000), ("s", 32, 2, 4, 96, 60_000)), seeds=(0,))


def default_ladder_dir() -> Path:
    """Where the committed ladder lives (ships as package data)."""
    return Path(str(resources.files("capcast.reference").joinpath("ladder")))


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _train(members: list[MemberSpec], out: Path, threads: int, jobs: int, log: Callable[[str], None] | None) -> list[SavedCheckpoint]:
    """Train ``members`` into ``out``; their checkpoints in ``members`` order."""
    if jobs <= 1:
        saved: list[SavedCheckpoint] = []
        for spec in members:
            if log:
                log(f"training {spec.name}: {spec.steps} steps, {spec.tokens:,} tokens")
            saved.extend(train_member(spec, out, threads=threads, log=log))
        return saved
    # Largest first, so the long runs start early and the small ones fill the gaps.
    order = sorted(members, key=lambda m: -m.tokens * m.hidden**2 * m.layers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {spec.name: pool.submit(train_member, spec, out, threads) for spec in order}
        for spec in order:
            runs = futures[spec.name].result()
            if log:
                log(f"trained {spec.name}: " + ", ".join(f"{c.name} loss {c.loss:.3f}" for c in runs) + f" ({runs[-1].seconds:.0f}s)")
    by_name = {spec.name: futures[spec.name].result() for spec in order}
    return [c for spec in members for c in by_name[spec.name]]


def _checkpoint_entry(c: SavedCheckpoint) -> dict:
    return {
        "name": c.name,
        "size": c.size,
        "seed": c.seed,
        "step": c.step,
        "tokens": c.tokens,
        "params": c.params,
        "total_params": c.total_params,
        "flops": 6 * c.params * c.tokens,
        "loss": c.loss,
        "sha256": c.sha256,
    }


def build_ladder(
    out_dir: str | Path,
    members: list[MemberSpec] | None = None,
    log: Callable[[str], None] | None = None,
    threads: int = THREADS,
    jobs: int = 2,
) -> dict:
    """Train every member into ``out_dir``; write the manifest and both family specs.

    Members are independent runs, so ``jobs`` worker processes train them in parallel without
    changing any weights (each run is deterministic on its own).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    members = members if members is not None else ladder_members()
    started = time.perf_counter()
    saved = _train(members, out, threads, jobs, log)
    manifest = {
        "family": FAMILY_NAME,
        "build_seconds": round(time.perf_counter() - started, 1),
        "threads": threads,
        "versions": _versions(),
        "members": [asdict(m) for m in members],
        "checkpoints": [_checkpoint_entry(c) for c in saved],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_specs(out, manifest)
    return manifest


def extend_ladder(
    ladder_dir: str | Path,
    sizes: list[str],
    log: Callable[[str], None] | None = None,
    threads: int = THREADS,
    jobs: int = 2,
    recipe: list[MemberSpec] | None = None,
) -> dict:
    """Train only the members of ``sizes`` (sizes of ``recipe``, default :func:`ladder_members`)
    into a built ladder folder.

    The members already in its manifest keep their weights and hashes; the new ones are merged
    in recipe order (members and checkpoints sorted as ``recipe`` lists them), and
    ``ladder.yaml`` and ``family.yaml`` are rewritten as ``build`` writes them. The versions the
    new members were trained with go to ``manifest["extended"]`` when they differ from the
    manifest's own.
    """
    out = Path(ladder_dir)
    manifest = load_manifest(out)
    recipe = recipe if recipe is not None else ladder_members()
    known = list(dict.fromkeys(m.size for m in recipe))
    unknown = [s for s in sizes if s not in known]
    if unknown:
        raise CapcastError(f"unknown size(s) {', '.join(unknown)}; the recipe's sizes are {', '.join(known)}")
    have = {(m["size"], m["seed"]) for m in manifest["members"]}
    new = [m for m in recipe if m.size in sizes and (m.size, m.seed) not in have]
    if not new:
        raise CapcastError(f"{out}: every member of {', '.join(sizes)} is already in manifest.json")
    started = time.perf_counter()
    saved = _train(new, out, threads, jobs, log)
    members = [asdict(m) for m in new] + manifest["members"]
    checkpoints = [_checkpoint_entry(c) for c in saved] + manifest["checkpoints"]
    rank = {(m.size, m.seed): i for i, m in enumerate(recipe)}
    members.sort(key=lambda m: rank.get((m["size"], m["seed"]), len(rank)))
    checkpoints.sort(key=lambda c: (rank.get((c["size"], c["seed"]), len(rank)), c["step"]))
    manifest["members"], manifest["checkpoints"] = members, checkpoints
    versions = _versions()
    manifest.setdefault("extended", []).append({
        "sizes": list(sizes), "seconds": round(time.perf_counter() - started, 1),
        **({"versions": versions} if versions != manifest.get("versions") else {}),
    })
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_specs(out, manifest)
    return manifest


def _entry(c: dict) -> dict:
    return {"name": c["name"], "model": f"./{c['name']}", "params": c["params"], "tokens": c["tokens"], "step": c["step"]}


def _target(manifest: dict) -> dict:
    top = [c for c in manifest["checkpoints"] if c["size"] == TARGET_SIZE and c["seed"] == TARGET_SEED]
    if not top:  # e.g. the tiny test recipe: the largest size present is the target
        largest = max(manifest["checkpoints"], key=lambda c: c["params"])
        top = [c for c in manifest["checkpoints"] if c["size"] == largest["size"] and c["seed"] == largest["seed"]]
    return max(top, key=lambda c: c["step"])


def member_schedule(member: dict) -> dict:
    """A manifest member's learning-rate schedule as a family spec's ``schedules`` entry: the
    schedule of :func:`capcast.reference.train._lr_at` (warm-up over steps // 20, cosine to 10% of
    peak over the run; tests/laws/test_ladder_schedule.py checks they agree step for step)."""
    spec = MemberSpec(**{k: tuple(v) if k == "save_at" else v for k, v in member.items()})
    return {"warmup_steps": max(1, spec.steps // 20), "peak_lr": spec.lr, "final_lr": round(0.1 * spec.lr, 12),
            "decay": "cosine", "total_steps": spec.steps, "tokens_per_step": spec.batch * ROW_CHARS}


def _schedules(manifest: dict, checkpoints: list[dict]) -> dict:
    """``schedules`` for the runs of ``checkpoints`` (run = ``<size>-s<seed>``), in member order."""
    runs = {(c["size"], c["seed"]) for c in checkpoints}
    return {f"{m['size']}-s{m['seed']}": member_schedule(m) for m in manifest["members"] if (m["size"], m["seed"]) in runs}


def write_specs(out: Path, manifest: dict) -> None:
    """ladder.yaml (every checkpoint) and family.yaml (smaller sizes -> target), each with its
    runs' learning-rate schedules."""
    target = _target(manifest)
    header = "# Generated by `capcast reference-family build`; params = non-embedding parameters.\n"
    everything = {"family": manifest["family"], "checkpoints": [_entry(c) for c in manifest["checkpoints"]],
                  "schedules": _schedules(manifest, manifest["checkpoints"])}
    (out / "ladder.yaml").write_text(header + yaml.safe_dump(everything, sort_keys=False))
    # Only sizes below the target's: never its run, nor its other seeds, nor anything larger. One
    # seed (the target's): a second seed doubled the demo's evaluation and changed no forecast's
    # verdict (ladder.yaml keeps every seed for backtests of the seed scatter).
    smaller = [c for c in manifest["checkpoints"] if c["params"] < target["params"] and c["seed"] == target["seed"]]
    backtest = {
        "family": manifest["family"],
        "checkpoints": [_entry(c) for c in smaller],
        "target": _entry(target),
        "schedules": _schedules(manifest, smaller + [target]),
    }
    note = f"# Backtest: forecast {target['name']} from every checkpoint of its seed's smaller sizes.\n"
    (out / "family.yaml").write_text(header + note + yaml.safe_dump(backtest, sort_keys=False))


def load_manifest(ladder_dir: str | Path | None = None) -> dict:
    ladder = Path(ladder_dir) if ladder_dir else default_ladder_dir()
    path = ladder / "manifest.json"
    if not path.is_file():
        raise CapcastError(f"{ladder}: no manifest.json; build the ladder with `capcast reference-family build --out {ladder}`")
    return json.loads(path.read_text())


def verify_ladder(ladder_dir: str | Path | None = None) -> list[str]:
    """Names of checkpoints whose weights do not match the manifest's sha256 (empty: all good)."""
    ladder = Path(ladder_dir) if ladder_dir else default_ladder_dir()
    bad = []
    for ckpt in load_manifest(ladder)["checkpoints"]:
        try:
            matches = file_weights_sha256(ladder / ckpt["name"]) == ckpt["sha256"]
        except Exception:  # missing or unreadable (truncated, corrupt) weights file
            matches = False
        if not matches:
            bad.append(ckpt["name"])
    return bad


def check_ladder(ladder_dir: str | Path | None = None) -> Path:
    """The ladder folder, after checking every checkpoint's hash; one-line error otherwise."""
    ladder = Path(ladder_dir) if ladder_dir else default_ladder_dir()
    bad = verify_ladder(ladder)
    if bad:
        raise CapcastError(
            f"{ladder}: weights of {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} do not match manifest.json; "
            "restore them (git checkout) or rebuild with `capcast reference-family build`"
        )
    return ladder


def compare_manifests(built: dict, reference: dict) -> list[str]:
    """Checkpoint names whose hashes differ between two manifests (a reproducibility check)."""
    ref = {c["name"]: c["sha256"] for c in reference["checkpoints"]}
    return [c["name"] for c in built["checkpoints"] if ref.get(c["name"]) != c["sha256"]]
