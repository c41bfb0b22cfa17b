"""Plugin discovery: built-ins, the ``capcast`` entry-point group, and a plugins directory.

One broken plugin never takes capcast down: its import or registration error is kept in
:attr:`Registry.broken` and shown by ``capcast plugins``; everything else keeps working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from capcast import hookspecs
from capcast.errors import CapcastError, describe
from capcast.task import Task

if TYPE_CHECKING:
    from capcast.laws.base import Law

ENTRY_POINT_GROUP = "capcast"
PLUGINS_DIR_ENV = "CAPCAST_PLUGINS_DIR"
# Built-in plugins are plain modules registered through the same hooks as third-party ones.
BUILTIN_PLUGINS = (
    "capcast_builtin.local_tasks",
    "capcast_builtin.reference_tasks",
    "capcast_builtin.laws",
)


@dataclass
class PluginInfo:
    name: str
    source: str  # "builtin", "entry point", or the plugin file's path
    tasks: list[str] = field(default_factory=list)
    laws: list[str] = field(default_factory=list)


@dataclass
class BrokenPlugin:
    name: str
    source: str
    error: str


@dataclass
class Registry:
    """Everything the loaded plugins registered."""

    tasks: dict[str, Task] = field(default_factory=dict)
    laws: dict[str, "Law"] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def task(self, name: str) -> Task:
        """The registered task called ``name``, or an lm-eval built-in task of that name."""
        if name in self.tasks:
            return self.tasks[name]
        return Task(name=name, lm_eval_config=None)

    def law(self, name: str) -> "Law":
        try:
            return self.laws[name]
        except KeyError:
            known = ", ".join(sorted(self.laws)) or "none"
            raise CapcastError(f"unknown law {name!r}; known laws: {known}") from None


def _load_plugin_file(path: Path) -> object:
    module_name = f"capcast_plugin_file_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _candidate_plugins(plugins_dir: Path | None) -> list[tuple[str, str, object]]:
    """(name, source, loader) for every plugin to try; loaders raise on a broken plugin."""
    candidates: list[tuple[str, str, object]] = []
    for module_name in BUILTIN_PLUGINS:
        candidates.append((module_name, "builtin", lambda m=module_name: importlib.import_module(m)))
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        candidates.append((ep.name, f"entry point {ep.value}", ep.load))
    dirs = [plugins_dir] if plugins_dir else []
    env_dir = os.environ.get(PLUGINS_DIR_ENV)
    if env_dir:
        dirs.append(Path(env_dir))
    for directory in dirs:
        if not directory.is_dir():
            raise CapcastError(f"plugins directory {directory} does not exist; pass an existing folder of *.py plugin files")
        for path in sorted(directory.glob("*.py")):
            candidates.append((path.stem, str(path), lambda p=path: _load_plugin_file(p)))
    return candidates


def load_registry(plugins_dir: Path | str | None = None) -> Registry:
    """Load every plugin and collect what it registers. Safe against broken plugins."""
    registry = Registry()
    pm = pluggy.PluginManager("capcast")
    pm.add_hookspecs(hookspecs)
    seen: set[str] = set()
    for name, source, loader in _candidate_plugins(Path(plugins_dir) if plugins_dir else None):
        if name in seen:
            continue
        try:
            plugin = loader()  # type: ignore[operator]
            pm.register(plugin, name=name)
        except Exception as exc:  # a broken plugin is reported, never fatal
            registry.broken.append(BrokenPlugin(name=name, source=source, error=describe(exc).strip()))
            continue
        tasks: list[Task] = []
        laws: list[Law] = []
        try:
            _call_own_hook(pm.hook.register_tasks, plugin, _checked_append(tasks, Task, "register_tasks"))
            _call_own_hook(pm.hook.register_laws, plugin, laws.append)
        except Exception as exc:
            pm.unregister(plugin)
            registry.broken.append(BrokenPlugin(name=name, source=source, error=describe(exc).strip()))
            continue
        seen.add(name)
        for task in tasks:
            registry.tasks[task.name] = task
        for law in laws:
            registry.laws[law.name] = law
        registry.plugins.append(
            PluginInfo(name=name, source=source, tasks=[t.name for t in tasks], laws=[law.name for law in laws])
        )
    return registry


def _checked_append(bucket: list, kind: type, hook: str):
    def register(item):
        if not isinstance(item, kind):
            raise TypeError(f"{hook} got {type(item).__name__}, expected capcast.{kind.__name__}")
        bucket.append(item)

    return register


def _call_own_hook(hook_caller, plugin: object, register) -> None:
    """Call one plugin's implementation of a hook, so a failure is attributed to that plugin."""
    for impl in hook_caller.get_hookimpls():
        if impl.plugin is plugin:
            impl.function(register=register)
