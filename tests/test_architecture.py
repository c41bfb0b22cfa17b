"""The house's rules, checked on the source: no import circle, arrows point down, one lm_eval-importing package (and its backend),
and forecasting from a table works with lm-eval unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "capcast"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, module: str, top_level_only: bool) -> set[str]:
    """Modules imported by ``path`` (absolute names); ``top_level_only`` skips function bodies and
    ``if TYPE_CHECKING:`` blocks, i.e. keeps what runs when the module is imported."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if top_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path, name, top_level_only):
            parts = imported.split(".")
            # importing a.b.c runs a, a.b and a.b.c: each is an edge, except the importer's own ancestors
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in modules and candidate != name and not name.startswith(candidate + "."):
                    targets.add(candidate)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_planted_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_between_capcast_modules():
    graph = _graph(top_level_only=True)
    assert len(graph) > 50  # the walk saw the package
    assert _cycle(graph) is None, f"import circle: {' -> '.join(_cycle(graph))}"


def _importers(prefixes: tuple[str, ...], of: tuple[str, ...], top_level_only: bool = False) -> list[str]:
    bad = []
    for name, path in _modules().items():
        if not name.startswith(prefixes):
            continue
        for imported in _imports(path, name, top_level_only):
            if imported.startswith(of):
                bad.append(f"{name} imports {imported}")
    return bad


def test_data_modules_never_import_models_or_the_evaluation_stack():
    data = ("capcast.tables", "capcast.store", "capcast.schema", "capcast.spec", "capcast.errors")
    assert _importers(data, ("capcast.laws", "capcast.forecasting", "capcast.evaluation", "capcast.cli", "lm_eval")) == []


HARNESS = "capcast.evaluation.harness"


def _in_harness(module: str) -> bool:
    return module == HARNESS or module.startswith(HARNESS + ".")


def test_only_the_harness_and_its_backend_import_lm_eval():
    # The harness package (one module per concern) and backend.py, the lm-eval model class capcast
    # registers (capcast-hf), import lm_eval; only the harness loads the backend.
    importers = {line.split()[0] for line in _importers(("capcast",), ("lm_eval",))}
    assert "capcast.evaluation.backend" in importers and any(_in_harness(m) for m in importers)
    assert {m for m in importers if not _in_harness(m)} == {"capcast.evaluation.backend"}
    backend_importers = {line.split()[0] for line in _importers(("capcast",), ("capcast.evaluation.backend",))}
    assert backend_importers and all(_in_harness(m) for m in backend_importers), backend_importers


def test_cli_commands_import_the_shared_module_never_the_app():
    # every command module in capcast/cli (a new one is covered without editing this test)
    folder = Path(__file__).resolve().parents[1] / "capcast" / "cli"
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "app"))
    assert {"evaluation", "forecasting", "sampling", "cod", "leaderboard", "store", "family", "common"} <= set(names)
    commands = tuple(f"capcast.cli.{n}" for n in names)
    assert _importers(commands, ("capcast.cli.app",)) == []


def test_the_pure_sampler_imports_no_store_or_harness():
    assert _importers(("capcast.passuntil.sampler", "capcast.passuntil.estimators"),
                      ("capcast.store", "capcast.evaluation", "lm_eval", "torch")) == []


BLOCK_LM_EVAL = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "lm_eval" or name.startswith("lm_eval."):
            raise ImportError(f"blocked for this test: {name}")
        return None
sys.meta_path.insert(0, Block())
"""


def test_forecasting_from_a_table_runs_with_lm_eval_unimportable(tmp_path):
    scores = tmp_path / "scores.csv"
    rows = ["family,run,model,params,tokens,task,metric,value,n_items,chance"]
    for i, (n, acc) in enumerate([(1e7, 0.30), (3e7, 0.36), (1e8, 0.45), (3e8, 0.55), (1e9, 0.64)]):
        rows.append(f"f,r{i},m{i},{n:g},{20 * n:g},arc,acc,{acc},1000,0.25")
    scores.write_text("\n".join(rows) + "\n")
    program = BLOCK_LM_EVAL + f"""
import capcast.forecasting, capcast.tables, capcast.forecasting.forecast, capcast.forecasting.backtest
assert "lm_eval" not in sys.modules
from capcast import cli
try:
    cli.main(["forecast", "--scores", {str(scores)!r}, "--target", "m4", "--method", "linear", "--format", "json"])
except SystemExit as exc:
    assert not exc.code, exc.code
try:
    import lm_eval
except ImportError:
    print("lm_eval blocked")
assert "lm_eval" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"task": "arc"' in proc.stdout and "lm_eval blocked" in proc.stdout


@pytest.mark.parametrize("module", ["capcast.forecasting", "capcast.tables", "capcast.laws", "capcast.passuntil.sampler"])
def test_rooms_import_without_lm_eval(module):
    proc = subprocess.run([sys.executable, "-c", BLOCK_LM_EVAL + f"import {module}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
