"""What every CLI command shares: the consoles, the per-invocation state (the plugin registry)
and small option parsers. Command modules import this, never the app, so there is no circle.

The consoles are :class:`SafeConsole`: control characters in names and messages (``\\x1b[2J``
in a model name) are printed escaped, and output that is not a terminal (a pipe, a file) is never
cut to 80 columns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console, ConsoleDimensions

from capcast.errors import CapcastError, escape_controls

if TYPE_CHECKING:
    from capcast.plugins.registry import Registry

# Options `capcast eval` and `capcast sample` share (one definition, the same help in both).
DATA_DIR_OPTION = typer.Option(
    None, "--data-dir", help="Folder of local benchmark files (ARC, MMLU, GSM8K, ... in their release formats) for air-gapped runs; docs/benchmarks.md."
)
UNSAFE_NO_SANDBOX_OPTION = typer.Option(
    False, "--unsafe-no-sandbox", help="Run generated code (HumanEval) WITHOUT isolation where bubblewrap is unavailable; at your own risk."
)
# lm-eval's own options, passed to lm-eval as its CLI passes them (docs/evaluation.md)
NUM_FEWSHOT_OPTION = typer.Option(
    None, "--num-fewshot", min=0, help="Few-shot examples per context, as lm-eval's --num_fewshot (default: each task's own setting, else 0)."
)
MODEL_ARGS_OPTION = typer.Option(
    None, "--model-args", help="k=v,k2=v2 for lm-eval's model constructor, as lm-eval's --model_args (e.g. max_length=2048,trust_remote_code=True)."
)
GEN_KWARGS_OPTION = typer.Option(
    None, "--gen-kwargs", help="k=v,... updating generative tasks' generation_kwargs, as lm-eval's --gen_kwargs (e.g. temperature=0.8,top_p=0.95)."
)
INCLUDE_PATH_OPTION = typer.Option(
    None, "--include-path", help="Folder of lm-eval task YAMLs whose tasks --tasks may name, used as-is (lm-eval's --include_path)."
)

# Scale-out: where the jobs run (`capcast eval`, `capcast sample`, `capcast forecast FAMILY.yaml`; docs/scale-out.md).
# An option the chosen executor does not use is refused in one line (capcast.executors.grid.check_options).
EXECUTOR_OPTION = typer.Option("local", "--executor", help="Where the checkpoint x task jobs run: local, ray or slurm (docs/scale-out.md).")
WORKERS_OPTION = typer.Option(None, "--workers", min=1, help="local: worker processes, one checkpoint each (one GPU each where CUDA is present).")
RETRIES_OPTION = typer.Option(None, "--retries", min=0, help="Attempts after a job's first failure (ray: 2, slurm: 1, local: 0).")
RAY_ADDRESS_OPTION = typer.Option(None, "--ray-address", help="ray: the cluster to join (e.g. auto, or ray://HEAD:10001); default a local runtime.")
CPUS_PER_JOB_OPTION = typer.Option(None, "--cpus-per-job", help="ray, slurm: CPUs reserved per job (default 1).")
GPUS_PER_JOB_OPTION = typer.Option(None, "--gpus-per-job", help="GPUs per job (default 1 where GPUs are present): more for --model-args parallelize=True or tensor_parallel_size=N.")
SLURM_PARTITION_OPTION = typer.Option(None, "--slurm-partition", help="slurm: the partition to submit to.")
SLURM_TIME_OPTION = typer.Option(None, "--slurm-time", min=1, help="slurm: time limit per array task in minutes (default 240; requeued on timeout).")
SLURM_PARALLELISM_OPTION = typer.Option(None, "--slurm-parallelism", min=1, help="slurm: array tasks running at once (default 32).")
SLURM_FOLDER_OPTION = typer.Option(None, "--slurm-folder", help="slurm: submitit's logs (default STORE/slurm; on the shared filesystem).")
SLURM_CLUSTER_OPTION = typer.Option(None, "--slurm-cluster", help="slurm: 'slurm' (default where sbatch exists) or 'local' (subprocesses here, for trials).")
CACHE_OPTION = typer.Option(
    None, "--cache", help="A `capcast prefetch` folder: jobs run offline from it (checked first; worker processes only)."
)


def make_executor(executor: str, **options):
    """The executor of the scale-out options (None: the in-process loop); one line for an option it does not use."""
    from capcast import api

    return api.executor(executor, **options)


# Width of output that is not a terminal: wide enough that no table is cut (`passunti...`).
PIPE_WIDTH = 10_000


class SafeConsole(Console):
    """A rich Console that escapes control characters in every string it prints or lays out in a
    table (its own styles and cursor moves are added later, so colours and progress bars work), and uses
    the full width when it does not write to a terminal (unless COLUMNS or ``width`` says otherwise)."""

    def render_str(self, text: str, **kwargs):
        # Every str printed or put in a table cell passes here before it is measured and laid out.
        return super().render_str(escape_controls(text), **kwargs)

    @property
    def size(self) -> ConsoleDimensions:
        dims = super().size
        if self._width is None and not os.environ.get("COLUMNS") and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size) -> None:
        Console.size.fset(self, new_size)


console = SafeConsole()
err_console = SafeConsole(stderr=True)


def wide_console(min_width: int = 150, file=None) -> SafeConsole:
    """A console on ``file`` (default stdout) at least ``min_width`` wide: a table people read is
    never squeezed below a readable width, and is never cut when piped."""
    target = console if file is None else SafeConsole(file=file)
    return SafeConsole(width=max(target.width, min_width), file=file)


@dataclass
class State:
    """Per-invocation state set by the global options."""

    plugins_dir: Optional[Path] = None
    registry: Optional["Registry"] = None
    debug: bool = False  # --debug: a real bug shows its traceback


state = State()


def registry() -> "Registry":
    """The plugin registry, loaded once per CLI invocation with the global --plugins-dir;
    each broken plugin is reported once, with its whole error."""
    from capcast.plugins.registry import load_registry

    if state.registry is None:
        state.registry = load_registry(state.plugins_dir)
        for broken in state.registry.broken:
            err_console.print(f"warning: plugin {broken.name} ({broken.source}) is broken: {broken.error}",
                              markup=False, highlight=False, soft_wrap=True)
    return state.registry


def split_list(value: Optional[str]) -> Optional[list[str]]:
    """A comma-separated option as a list of names (blanks dropped); None when absent or empty."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def pct(x: Optional[float]) -> str:
    """A score as points (x 100, one decimal); empty when missing."""
    return "" if x is None else f"{100 * x:.1f}"


def check_output_file(output: Optional[Path], option: str = "-o") -> None:
    """One line, before any work, for an output file that cannot be written: a folder, a path under
    a file, or a folder that does not exist."""
    if output is None:
        return
    output = Path(output)
    if output.is_dir():
        raise CapcastError(f"{option} {output} is a folder; give a file name")
    parent = output.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise CapcastError(f"{option} {output}: {above} is a file, not a folder; fix the path")
            break
    if not parent.is_dir():
        raise CapcastError(f"{option} {output}: folder {parent} does not exist; create it (mkdir -p {parent}) or fix the path")


def check_output_folder(folder: Optional[Path], option: str) -> None:
    """One line, before any work, for an output folder that is a file (or lies under one)."""
    if folder is None:
        return
    folder = Path(folder)
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                what = "is a file" if above == folder else f"lies under the file {above}"
                raise CapcastError(f"{option} {folder} {what}; give a folder")
            return


def progress_bars():
    """Show the library's progress bars (forecasts, backtests) on stderr while a block runs; they
    vanish when it ends, and a pipe or file sees none."""
    from capcast.progress import reporting

    return reporting(err_console)
