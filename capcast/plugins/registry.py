"""Plugin discovery and registration: built-ins, the ``capcast`` entry-point group, a plugins folder.

Every hook is called through pluggy (``pm.hook.register_tasks(register=...)``), so ``tryfirst``,
``trylast`` and wrappers behave as pluggy documents. Nothing fails silently:

- a plugin that cannot be imported, whose hook has the wrong arguments, or that implements a hook
  capcast does not have (a misspelt ``register_task``: ``pm.check_pending()``) is *broken*;
- a hook that raises, or that registers something of the wrong type, marks its plugin broken and
  drops everything that plugin registered, while every other plugin keeps working;
- a plugin that registers a built-in's name is refused (its plugin is broken, with the reason)
  unless it passes ``register(obj, replace=True)``;
- two plugins that register the same name make that name a *conflict*: using it is an error that
  names both plugins (today's "last one wins" picked one silently);
- a task's relative ``lm_eval_config`` path (and relative ``data_files`` in a dict config)
  resolves against the plugin's own folder, never the current directory.

Broken plugins and conflicts are kept in the :class:`Registry` and listed by ``capcast plugins``.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

import pluggy

from capcast.errors import CapcastError
from capcast.plugins import hookspecs
from capcast.tasks.task import Task

if TYPE_CHECKING:
    from capcast.laws.base import Law
    from capcast.metrics import Metric
    from capcast.tables.readers.base import Reader

ENTRY_POINT_GROUP = "capcast"
PLUGINS_DIR_ENV = "CAPCAST_PLUGINS_DIR"
BUILTIN_SOURCE = "builtin"
# What each hook registers: (hook name, registry attribute, the word users read).
KINDS = (("register_tasks", "tasks", "task"), ("register_laws", "laws", "law"), ("register_readers", "readers", "reader"),
         ("register_metrics", "metrics", "metric"))
ATTRIBUTES = {kind: attribute for _, attribute, kind in KINDS}  # "law" -> "laws"


@dataclass
class PluginInfo:
    name: str
    source: str  # "builtin", "entry point <module>", or the plugin file's path
    tasks: list[str] = field(default_factory=list)
    laws: list[str] = field(default_factory=list)
    readers: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)


@dataclass
class BrokenPlugin:
    name: str
    source: str
    error: str


@dataclass
class Registry:
    """Everything the loaded plugins registered, who registered it, and what went wrong."""

    tasks: dict[str, Task] = field(default_factory=dict)
    laws: dict[str, "Law"] = field(default_factory=dict)
    readers: dict[str, "Reader"] = field(default_factory=dict)
    metrics: dict[str, "Metric"] = field(default_factory=dict)
    plugins: list[PluginInfo] = field(default_factory=list)
    broken: list[BrokenPlugin] = field(default_factory=list)
    # (kind, name) -> the plugins that all registered it; the name is unusable until one goes.
    conflicts: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def _check_conflict(self, kind: str, name: str) -> None:
        owners = self.conflicts.get((kind, name))
        if owners:
            raise CapcastError(f"{kind} {name!r} is registered by several plugins ({', '.join(owners)}); uninstall or rename one of them")

    def task(self, name: str) -> Task:
        """The registered task called ``name``, or an lm-eval built-in task of that name."""
        self._check_conflict("task", name)
        if name in self.tasks:
            return self.tasks[name]
        return Task(name=name, lm_eval_config=None)

    def _lookup(self, kind: str, registered: dict, name: str):
        """The ``kind`` registered as ``name``; a conflict or an unknown name is one line."""
        self._check_conflict(kind, name)
        try:
            return registered[name]
        except KeyError:
            known = ", ".join(sorted(registered)) or "none"
            raise CapcastError(f"unknown {kind} {name!r}; known {kind}s: {known}") from None

    def law(self, name: str) -> "Law":
        return self._lookup("law", self.laws, name)

    def reader(self, name: str) -> "Reader":
        return self._lookup("reader", self.readers, name)

    def metric(self, name: str, values: Iterable[float] | None = None) -> "Metric":
        """The description of metric ``name``: registered (a filtered ``exact_match/strict-match``
        is ``exact_match``), built in, or inferred from ``values`` (a score in [0, 1]); a metric
        that is none of these is a one-line :class:`CapcastError` asking for a Metric."""
        from capcast.metrics import base_metric, resolve_metric

        self._check_conflict("metric", name)
        if name not in self.metrics:  # a filtered name reads its base metric's description
            self._check_conflict("metric", base_metric(name))
        return resolve_metric(name, () if values is None else values, self.metrics)


def describe_whole(exc: BaseException) -> str:
    """The whole error on one line: type, every line of the message, and where it was raised."""
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {message}{where}"


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


def _builtin_plugins() -> list[tuple[str, str, Callable[[], object]]]:
    from capcast.plugins import builtin

    return [(f"capcast.plugins.builtin.{name}", BUILTIN_SOURCE, lambda m=module: m) for name, module in builtin.plugins().items()]


def _candidate_plugins(plugins_dir: Path | None) -> list[tuple[str, str, Callable[[], object]]]:
    """(name, source, loader) for every plugin to try, built-ins first; loaders raise on a broken plugin."""
    candidates = _builtin_plugins()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        candidates.append((ep.name, f"entry point {ep.value}", ep.load))
    dirs = [plugins_dir] if plugins_dir else []
    env_dir = os.environ.get(PLUGINS_DIR_ENV)
    if env_dir and Path(env_dir) not in dirs:
        dirs.append(Path(env_dir))
    for directory in dirs:
        if not directory.is_dir():
            raise CapcastError(f"plugins directory {directory} does not exist; pass an existing folder of *.py plugin files")
        for path in sorted(directory.glob("*.py")):
            candidates.append((path.stem, str(path), lambda p=path: _load_plugin_file(p)))
    return candidates


def plugin_folder(plugin: object) -> Path | None:
    """The folder a plugin's relative paths resolve against: its module's folder."""
    module = plugin if inspect.ismodule(plugin) else inspect.getmodule(plugin)
    filename = getattr(module, "__file__", None)
    return Path(filename).resolve().parent if filename else None


def _resolve(path: str | Path, folder: Path) -> str:
    if "://" in str(path):  # a URL (https://, hf://): not a local path
        return str(path)
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (folder / p).resolve())


def resolve_task_paths(task: Task, folder: Path | None) -> Task:
    """``task`` with a relative YAML path, or relative ``data_files`` of a dict config, made
    absolute against ``folder`` (the registering plugin's folder)."""
    config = task.lm_eval_config
    if folder is None:
        return task
    if isinstance(config, (str, Path)):
        return task.model_copy(update={"lm_eval_config": _resolve(config, folder)})
    if isinstance(config, dict):
        files = (config.get("dataset_kwargs") or {}).get("data_files")
        if files is None:
            return task
        if isinstance(files, dict):
            resolved = {split: ([_resolve(f, folder) for f in v] if isinstance(v, list) else _resolve(v, folder)) for split, v in files.items()}
        elif isinstance(files, list):
            resolved = [_resolve(f, folder) for f in files]
        else:
            resolved = _resolve(files, folder)
        kwargs = {**config["dataset_kwargs"], "data_files": resolved}
        return task.model_copy(update={"lm_eval_config": {**config, "dataset_kwargs": kwargs}})
    return task


@runtime_checkable
class _LawShape(Protocol):
    """The shape of :class:`capcast.laws.base.Law` (same structural check), without importing the
    laws' numerical stack at start-up (docs/speed.md)."""

    name: str
    description: str

    def fit(self, series): ...


def _expected_types() -> dict[str, tuple[type, str]]:
    from capcast.metrics import Metric
    from capcast.tables.readers.base import Reader

    return {"task": (Task, "capcast.Task"), "law": (_LawShape, "an object with name, description and fit(series) (capcast.Law)"),
            "reader": (Reader, "capcast.Reader"), "metric": (Metric, "capcast.metrics.Metric")}


class _Collector:
    """The ``register`` callbacks handed to the hooks; attributes each object to the plugin whose
    implementation is running (set by :func:`_guard`) and records what is wrong."""

    def __init__(self, registry: Registry, folders: dict[str, Path | None], sources: dict[str, str]):
        self.registry = registry
        self.folders = folders
        self.sources = sources
        self.current: contextvars.ContextVar[str | None] = contextvars.ContextVar("capcast_plugin", default=None)
        self.items: dict[str, list[tuple[str, str, Any, bool]]] = {}  # plugin -> (kind, name, obj, replace)
        self.errors: dict[str, str] = {}
        self.expected = _expected_types()

    def fail(self, plugin: str, message: str) -> None:
        self.errors.setdefault(plugin, message)

    def register_for(self, kind: str, hook: str):
        def register(obj: Any, replace: bool = False) -> None:
            plugin = self.current.get()
            if plugin is None:  # called outside a hook (kept for later): refuse loudly
                raise CapcastError(f"{hook}'s register() was called after the hook returned; call it inside the hook")
            expected, words = self.expected[kind]
            if not isinstance(obj, expected) or not isinstance(getattr(obj, "name", None), str) or not obj.name:
                self.fail(plugin, f"TypeError: {hook} got {type(obj).__name__}, expected {words}")
                return
            if kind == "task":
                obj = resolve_task_paths(obj, self.folders.get(plugin))
            self.items.setdefault(plugin, []).append((kind, obj.name, obj, bool(replace)))

        return register

    def guard(self, plugin: str, function: Callable) -> Callable:
        def call(*args, **kwargs):
            token = self.current.set(plugin)
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # a failing plugin is reported, never fatal to the others
                self.fail(plugin, describe_whole(exc))
                return None
            finally:
                self.current.reset(token)

        call.__wrapped__ = function
        return call

    def guard_wrapper(self, plugin: str, function: Callable) -> Callable:
        """A wrapper (``wrapper=True`` or ``hookwrapper=True``) run step by step inside its plugin's
        context, so it may call ``register`` before or after its ``yield``; a wrapper that raises or
        never yields marks only its own plugin broken, and the other implementations still run."""

        def step(action: Callable[[], Any]) -> tuple[bool, Any]:
            token = self.current.set(plugin)
            try:
                action()
                return True, None  # the wrapper yielded (again)
            except StopIteration as stop:
                return False, stop
            except Exception as exc:
                self.fail(plugin, describe_whole(exc))
                return False, None
            finally:
                self.current.reset(token)

        def call(*args, **kwargs):
            inner = function(*args, **kwargs)
            yielded, stop = step(lambda: next(inner))
            if stop is not None:
                self.fail(plugin, f"RuntimeError: hook wrapper {function.__name__} did not yield")
            try:
                outcome = yield  # the inner implementations run here
            except BaseException:
                inner.close()
                raise
            if not yielded:  # failed before its yield: pass the others' result through
                return outcome
            yielded, stop = step(lambda: inner.send(outcome))
            if yielded:
                inner.close()
                self.fail(plugin, f"RuntimeError: hook wrapper {function.__name__} yields twice")
            return stop.value if stop is not None else outcome

        call.__wrapped__ = function
        return call


def load_registry(plugins_dir: Path | str | None = None) -> Registry:
    """Load every plugin and collect what it registers. Safe against broken plugins."""
    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    sources: dict[str, str] = {}
    folders: dict[str, Path | None] = {}
    for name, source, loader in _candidate_plugins(Path(plugins_dir) if plugins_dir else None):
        if name in sources or any(b.name == name for b in registry.broken):
            continue  # the same plugin found twice (e.g. entry point and plugins folder): load it once
        try:
            plugin = loader()
            pm.register(plugin, name=name)
        except Exception as exc:
            registry.broken.append(BrokenPlugin(name=name, source=source, error=describe_whole(exc)))
            continue
        try:
            pm.check_pending()  # earlier plugins passed: a failure here is this plugin's unknown hook
        except pluggy.PluginValidationError as exc:
            pm.unregister(plugin)
            registry.broken.append(BrokenPlugin(name=name, source=source, error=f"{describe_whole(exc)}; capcast's hooks are "
                                                f"{', '.join(hook for hook, _, _ in KINDS)}"))
            continue
        sources[name] = source
        folders[name] = plugin_folder(plugin)

    collector = _Collector(registry, folders, sources)
    for hook_name, _, kind in KINDS:
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            guard = collector.guard_wrapper if impl.hookwrapper or impl.wrapper else collector.guard
            impl.function = guard(impl.plugin_name, impl.function)
        try:
            caller(register=collector.register_for(kind, hook_name))
        except Exception as exc:  # past every guard (should not happen): blame this hook's plugins
            for impl in caller.get_hookimpls():
                collector.fail(impl.plugin_name, describe_whole(exc))

    _commit(registry, collector, sources)
    _give_auto_its_candidates(registry)
    return registry


def _give_auto_its_candidates(registry: Registry) -> None:
    """``auto`` chooses among the registered laws that declare ``auto_candidate = True``, in
    registration order (built-ins first): a plugin's law joins by saying so, and a plugin that
    replaces a built-in candidate (``replace=True``) is the one ``auto`` uses."""
    auto = registry.laws.get("auto")
    if auto is None or not hasattr(auto, "with_candidates"):
        return
    candidates = tuple(law for name, law in registry.laws.items() if name != "auto" and getattr(law, "auto_candidate", False) is True)
    if candidates:
        registry.laws["auto"] = auto.with_candidates(candidates)


def _commit(registry: Registry, collector: _Collector, sources: dict[str, str]) -> None:
    """Move what every healthy plugin registered into the registry, refusing shadows of built-ins."""
    owner: dict[tuple[str, str], str] = {}
    builtin = {name for name, source in sources.items() if source == BUILTIN_SOURCE}
    for plugin in sources:  # built-ins first: they were loaded first
        items = collector.items.get(plugin, [])
        seen: set[tuple[str, str]] = set()
        for kind, name, _, replace in items:
            key = (kind, name)
            if key in seen:
                collector.fail(plugin, f"registers {kind} {name!r} twice; give each {kind} a unique name")
            seen.add(key)
            first = owner.get(key)
            if first in builtin and plugin not in builtin and not replace:
                collector.fail(plugin, f"{kind} {name!r} is a built-in name; rename yours, or register(..., replace=True) to replace the built-in")
        if plugin in collector.errors:
            registry.broken.append(BrokenPlugin(name=plugin, source=sources[plugin], error=collector.errors[plugin]))
            continue
        info = PluginInfo(name=plugin, source=sources[plugin])
        for kind, name, obj, replace in items:
            key = (kind, name)
            attribute = ATTRIBUTES[kind]
            first = owner.get(key)
            if first is not None and not (first in builtin and replace):
                registry.conflicts.setdefault(key, [first]).append(plugin)
            else:
                owner[key] = plugin
                getattr(registry, attribute)[name] = obj
            getattr(info, attribute).append(name)
        registry.plugins.append(info)
    for kind, name in registry.conflicts:
        getattr(registry, ATTRIBUTES[kind]).pop(name, None)
