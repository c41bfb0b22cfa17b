"""Conformance checks a plugin author runs in their own tests, like scikit-learn's ``check_estimator``.

    from capcast.testing import check_law, check_task

    def test_my_law():
        check_law(MyLaw())

    def test_my_task():
        check_task(my_task)

Each check raises :class:`AssertionError` with a message naming the first violation, and returns
``None`` when everything holds. :func:`clean_series` and :func:`flat_series` build the synthetic
series :func:`check_law` fits by default; pass ``series=`` (and ``flat_series=``) for a law that
needs other inputs, e.g. a loss metric in ``series.extra`` (``clean_series(loss="bpb_gold")``).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np

__all__ = ["check_law", "check_task", "clean_series", "flat_series"]

CHANCE = 0.25
N_ITEMS = 500
SIZES = tuple(np.geomspace(2e7, 1e9, 7))  # parameters; tokens = 20 x params (Chinchilla-style)
LEVELS = (0.5, 0.9, 0.95)
# Answers a checker must survive: empty, control characters, whitespace, unicode, very long.
GARBAGE_SAMPLES = ("", "\x00", " ", "\n\n", "\x00\xff garbage \u2603 \ud7ff", "9" * 5000)


def _series(value: np.ndarray, chance: float, extra: dict[str, np.ndarray] | None, sizes: Iterable[float]):
    from capcast.tables.series import Series

    params = np.asarray(list(sizes), dtype=float)
    tokens = 20 * params
    return Series(
        task="check", metric="acc", model=np.array([f"check-{i}" for i in range(len(params))], dtype=object),
        params=params, tokens=tokens, flops=6 * params * tokens, value=np.asarray(value, dtype=float),
        n_items=np.full(len(params), N_ITEMS), chance=chance, extra=dict(extra or {}),
    )


def _loss(params: np.ndarray) -> np.ndarray:
    tokens = 20 * params
    return 1.7 + 0.6 * (params / 1e9) ** -0.3 + 0.5 * (tokens / 1e11) ** -0.25


def clean_series(loss: str | None = None, chance: float = CHANCE, seed: int = 0, sizes: Iterable[float] = SIZES):
    """A clean sigmoid-shaped score series: one final checkpoint per size, rising from near chance
    to about 0.85 with compute, binomial noise over ``N_ITEMS`` items. ``loss`` adds a smooth loss
    metric of that name to ``extra`` (for two-step laws: ``bpb_gold``, ``val/c4:loss``, ...)."""
    sizes = np.asarray(list(sizes), dtype=float)
    log_c = np.log10(6 * sizes * 20 * sizes)
    truth = chance + (0.9 - chance) * (1 / (1 + np.exp(-1.3 * (log_c - np.mean(log_c)))))
    value = np.random.default_rng(seed).binomial(N_ITEMS, truth) / N_ITEMS
    extra = {loss: _loss(sizes)} if loss else None
    return _series(value, chance, extra, sizes)


def flat_series(loss: str | None = None, chance: float = CHANCE, seed: int = 0, sizes: Iterable[float] = SIZES):
    """No signal: every checkpoint at ``chance`` plus noise far below one binomial standard error."""
    sizes = np.asarray(list(sizes), dtype=float)
    value = np.clip(chance + np.random.default_rng(seed).normal(0, 1e-3, len(sizes)), 0, 1)
    extra = {loss: _loss(sizes)} if loss else None
    return _series(value, chance, extra, sizes)


_default_flat_series = flat_series  # check_law's argument of that name hides the function


def _fail(message: str) -> None:
    raise AssertionError(message)


def _snapshot_series(series) -> dict[str, Any]:
    fields = {f.name: copy.deepcopy(getattr(series, f.name)) for f in dataclasses.fields(series)} if dataclasses.is_dataclass(series) else {}
    return fields or {name: copy.deepcopy(getattr(series, name, None)) for name in ("value", "params", "tokens", "flops", "n_items", "extra")}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if callable(a) or callable(b):
        return a is b  # deepcopy keeps functions as they are
    try:
        return bool(a == b)
    except Exception:  # an object without a usable ==: identity
        return a is b


def _snapshot_fit(fit) -> dict[str, Any]:
    state: dict[str, Any] = {}
    names = [f.name for f in dataclasses.fields(fit)] if dataclasses.is_dataclass(fit) else list(getattr(fit, "__dict__", {}))
    for name in names:
        try:
            state[name] = copy.deepcopy(getattr(fit, name))
        except Exception:  # not copyable (a lock, a handle): compare what can be compared
            continue
    state["params()"] = copy.deepcopy(dict(fit.params))
    state["cov()"] = np.array(fit.cov, copy=True)
    return state


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if name not in after or not _same(before[name], after[name])]


def _default_target(series):
    from capcast.tables.series import Target

    params = 4 * float(np.max(series.params))  # well beyond the largest fitting size
    return Target(name="check-target", params=params, tokens=20 * params, flops=6 * params * 20 * params)


def _largest_checkpoint(series):
    from capcast.tables.series import Target

    i = int(np.argmax(series.flops))
    return Target(name=str(series.model[i]), params=float(series.params[i]), tokens=float(series.tokens[i]), flops=float(series.flops[i]))


def _check_prediction(name: str, pred, target, level: float, score: bool) -> float:
    from capcast.laws.base import Prediction

    where = f"law {name!r}: predict({target.name!r}, level={level})"
    if not isinstance(pred, Prediction):
        _fail(f"{where} returned {type(pred).__name__}, expected capcast.Prediction")
    values = {"mean": pred.mean, "lower": pred.lower, "upper": pred.upper}
    for key, value in values.items():
        if not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(float(value)):
            _fail(f"{where}: {key} is {value!r}, expected a finite number")
    if not pred.lower <= pred.mean <= pred.upper:
        _fail(f"{where}: expected lower <= mean <= upper, got {pred.lower:.6g} <= {pred.mean:.6g} <= {pred.upper:.6g}")
    if score and not (0.0 <= pred.lower and pred.upper <= 1.0):
        _fail(f"{where}: a score forecast must lie in [0, 1], got [{pred.lower:.6g}, {pred.upper:.6g}]")
    if not math.isclose(float(pred.level), level):
        _fail(f"{where}: Prediction.level is {pred.level!r}, expected {level}")
    return float(pred.upper - pred.lower)


def check_law(law, series=None, flat_series=None, targets=None) -> None:
    """Check that ``law`` follows :class:`capcast.Law` and behaves as capcast's forecasts assume.

    - ``name`` and ``description`` are non-empty strings and ``fit`` is callable;
    - on ``series`` (default :func:`clean_series`: a clean sigmoid rising from chance), ``fit``
      returns a fit with a non-empty str ``law``, ``params`` (dict of str -> finite float), ``cov``
      (a square ``np.ndarray`` of side ``len(params)``) and ``summary()`` returning a str; the fit
      is frozen (assigning an attribute raises);
    - ``predict(target, level)`` returns a :class:`capcast.Prediction` with finite
      ``lower <= mean <= upper``, within [0, 1] when the series is a score; the interval is wider
      at level 0.95 than at 0.5 and never narrower at a higher level; the same call gives the same
      answer; ``predict`` mutates neither the fit nor the series, and ``fit`` does not mutate the
      series;
    - on ``flat_series`` (default: at chance within noise) capcast's forecast answers "not
      predictable": the law's ``fit`` raises :class:`capcast.NotPredictable` (any other exception
      fails the check), or capcast's own signal test, which runs before a law on a score metric,
      refuses the series. A law on a metric that is not a score (values outside [0, 1]) gets no
      such test: its ``fit`` must raise NotPredictable itself. A law with a ``without_trend``
      method (``auto``) may instead answer with persistence, if its notes say "no trend to
      extrapolate".

    ``targets`` (default: the largest fitting checkpoint and a model 4x larger than it) are the
    :class:`capcast.Target` s predicted. ``predict`` may refuse a target it must not be trusted at
    by raising NotPredictable (at every level alike), but it must answer at least one of them.
    """
    from capcast.laws.base import Law, NotPredictable

    label = repr(getattr(law, "name", type(law).__name__))
    for attribute in ("name", "description"):
        value = getattr(law, attribute, None)
        if not isinstance(value, str) or not value.strip():
            _fail(f"law {label}: {attribute} must be a non-empty str, got {value!r}")
    if not callable(getattr(law, "fit", None)):
        _fail(f"law {label}: has no callable fit(series)")
    if not isinstance(law, Law):
        _fail(f"law {label}: is not a capcast.Law (needs name, description and fit)")
    name = law.name

    series = clean_series() if series is None else series
    score = bool(np.all((np.asarray(series.value) >= 0) & (np.asarray(series.value) <= 1)))
    targets = list(targets) if targets is not None else [_largest_checkpoint(series), _default_target(series)]
    series_before = _snapshot_series(series)
    try:
        fit = law.fit(series)
    except NotPredictable as exc:
        raise AssertionError(f"law {name!r}: fit raised NotPredictable on the clean series ({exc}); pass series= with the inputs "
                             "your law needs") from exc
    if fit is None:
        _fail(f"law {name!r}: fit returned None, expected a LawFit")
    changed = _diff(series_before, _snapshot_series(series))
    if changed:
        _fail(f"law {name!r}: fit mutated its input series ({', '.join(changed)})")

    law_attr = getattr(fit, "law", None)
    if not isinstance(law_attr, str) or not law_attr:
        _fail(f"law {name!r}: fit.law must be a non-empty str, got {law_attr!r}")
    params = getattr(fit, "params", None)
    if not isinstance(params, dict) or not params:
        _fail(f"law {name!r}: fit.params must be a non-empty dict of parameter name -> value, got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(float(value)):
            _fail(f"law {name!r}: fit.params[{key!r}] = {value!r}; expected str keys and finite float values")
    cov = getattr(fit, "cov", None)
    if not isinstance(cov, np.ndarray):
        _fail(f"law {name!r}: fit.cov must be an np.ndarray, got {type(cov).__name__}")
    if cov.shape != (len(params), len(params)):
        _fail(f"law {name!r}: fit.cov has shape {cov.shape}, expected {(len(params), len(params))} (one row per parameter)")
    summary = fit.summary() if callable(getattr(fit, "summary", None)) else None
    if not isinstance(summary, str) or not summary.strip():
        _fail(f"law {name!r}: fit.summary() must return a non-empty str, got {summary!r}")
    for attribute in ("law", "_capcast_check"):
        try:
            setattr(fit, attribute, "mutated")
        except Exception:
            continue
        _fail(f"law {name!r}: the fit is mutable (setting fit.{attribute} worked); make it frozen, e.g. @dataclass(frozen=True)")

    fit_before = _snapshot_fit(fit)
    answered = 0
    for target in targets:
        preds = []
        for level in LEVELS:
            try:
                preds.append(fit.predict(target, level=level))
            except NotPredictable as exc:  # a law may refuse a target it must not be trusted at
                preds.append(exc)
        refused = [level for level, pred in zip(LEVELS, preds) if isinstance(pred, NotPredictable)]
        if refused and len(refused) < len(LEVELS):
            _fail(f"law {name!r}: predict({target.name!r}) raised NotPredictable at level(s) {refused} but not at the others")
        if refused:
            continue
        answered += 1
        widths = [_check_prediction(name, pred, target, level, score) for level, pred in zip(LEVELS, preds)]
        if any(b < a - 1e-12 for a, b in zip(widths, widths[1:])):
            _fail(f"law {name!r}: interval widths at levels {LEVELS} for {target.name!r} are {widths}; a higher level must not be narrower")
        if not widths[-1] > widths[0]:
            _fail(f"law {name!r}: the {LEVELS[-1]} interval for {target.name!r} ({widths[-1]:.6g}) is not wider than the "
                  f"{LEVELS[0]} one ({widths[0]:.6g})")
        first, again = fit.predict(target, level=0.9), fit.predict(target, level=0.9)
        if (first.mean, first.lower, first.upper) != (again.mean, again.lower, again.upper):
            _fail(f"law {name!r}: predicting {target.name!r} twice gave {first} and then {again}")
    if not answered:
        _fail(f"law {name!r}: predict raised NotPredictable for every target ({', '.join(repr(t.name) for t in targets)})")
    changed = _diff(fit_before, _snapshot_fit(fit))
    if changed:
        _fail(f"law {name!r}: predict mutated the fit ({', '.join(changed)})")
    changed = _diff(series_before, _snapshot_series(series))
    if changed:
        _fail(f"law {name!r}: predict mutated the series it was fitted on ({', '.join(changed)})")

    _check_flat(law, _default_flat_series() if flat_series is None else flat_series)


def _check_flat(law, flat) -> None:
    from capcast.forecasting.forecast import STATUS_UNPREDICTABLE, fit_law
    from capcast.laws.base import NotPredictable

    name = law.name
    try:
        law.fit(flat)
    except NotPredictable:
        return
    except Exception as exc:
        raise AssertionError(f"law {name!r}: fit on flat data at chance raised {type(exc).__name__}: {exc}; raise "
                             "capcast.NotPredictable with the reason instead") from exc
    fit, status, reason = fit_law(flat, law)  # what `capcast forecast` does: its signal test, then the fit
    if callable(getattr(law, "without_trend", None)) and "no trend to extrapolate" in str(getattr(fit, "notes", "")):
        return  # a law that forecasts persistence where there is no trend (auto:flat), and says so
    if status != STATUS_UNPREDICTABLE:
        _fail(f"law {name!r}: on flat data at chance capcast's forecast answered {status!r} {reason!r}, expected "
              "'not predictable'; raise capcast.NotPredictable in fit when the series shows no signal")


# ------------------------------------------------------------------------------------------ tasks


def _local_files(files: Any) -> list[str]:
    """The paths named by a ``data_files`` value (str, list, or split -> str/list); URLs left out."""
    if files is None:
        return []
    if isinstance(files, (str, Path)):
        found = [str(files)]
    elif isinstance(files, dict):
        found = [f for v in files.values() for f in _local_files(v)]
    elif isinstance(files, (list, tuple)):
        found = [f for v in files for f in _local_files(v)]
    else:
        _fail(f"dataset_kwargs.data_files is a {type(files).__name__}; expected a path, a list or a split -> path dict")
    return [f for f in found if "://" not in f]


def _check_data_files(where: str, config: dict, folder: Path | None) -> list[Path]:
    kwargs = config.get("dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        _fail(f"{where}: dataset_kwargs must be a dict, got {type(kwargs).__name__}")
    paths = []
    for name in _local_files(kwargs.get("data_files")):
        path = Path(name).expanduser()
        if not path.is_absolute():
            if folder is None:
                _fail(f"{where}: data file {name!r} is relative; make it absolute so the task runs from any directory")
            path = folder / path
        if not any(path.parent.glob(path.name)):  # a path or a glob pattern (datasets takes both)
            _fail(f"{where}: data file {path} does not exist")
        paths.extend(sorted(path.parent.glob(path.name)))
    return paths


def _read_yaml(path: Path) -> dict:
    import yaml

    class _IgnoreTags(yaml.SafeLoader):  # lm-eval's !function tags: their value does not matter here
        pass

    _IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        raw = yaml.load(path.read_text(), Loader=_IgnoreTags)  # noqa: S506 - SafeLoader subclass
    except Exception as exc:
        raise AssertionError(f"lm_eval_config YAML {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        _fail(f"lm_eval_config YAML {path} is not a mapping of lm-eval task keys")
    return raw


def _docs_of(paths: list[Path], limit: int = 5) -> list[dict]:
    docs: list[dict] = []
    for path in paths:
        if path.suffix not in (".json", ".jsonl"):
            continue
        text = path.read_text()
        try:
            loaded = json.loads(text)
            rows = loaded if isinstance(loaded, list) else [loaded]
        except json.JSONDecodeError:
            rows = [json.loads(line) for line in text.splitlines()[: limit * 4] if line.strip()]
        docs.extend(r for r in rows if isinstance(r, dict))
        if len(docs) >= limit:
            break
    return docs[:limit]


_OUTPUT_TYPES = {"multiple_choice": "multiple_choice", "generate": "generate_until"}


def check_task(task, docs: list[dict] | None = None) -> None:
    """Check that ``task`` is a :class:`capcast.Task` capcast can prepare and score.

    - ``name`` is non-empty, ``kind`` is ``"multiple_choice"``, ``"generate"`` or None, ``chance``
      lies in [0, 1] and ``repeats`` is at least 1;
    - ``lm_eval_config``: a YAML path is absolute and exists (and so do the data files it names);
      a dict's local ``dataset_kwargs.data_files`` are absolute and exist; a ``build(data_dir)``
      callable, called with a temporary folder, returns a dict with a ``task`` key whose data files
      exist; a config's ``output_type`` agrees with ``kind``;
    - a generative task's ``checker`` is called as ``checker(sample: str, doc: dict)`` with garbage
      samples (``""``, ``"\\x00"``, ...) on up to five of the task's docs (read from its JSON/JSONL
      data, or ``docs``) and returns a bool every time; an exception fails the check.
    """
    from capcast.tasks.task import Task

    if not isinstance(task, Task):
        _fail(f"check_task expects a capcast.Task, got {type(task).__name__}")
    if not isinstance(task.name, str) or not task.name.strip():
        _fail(f"task name must be a non-empty str, got {task.name!r}")
    where = f"task {task.name!r}"
    if task.kind not in ("multiple_choice", "generate", None):
        _fail(f"{where}: kind is {task.kind!r}; expected 'multiple_choice', 'generate' or None")
    if not isinstance(task.chance, (int, float)) or not 0.0 <= task.chance <= 1.0:
        _fail(f"{where}: chance is {task.chance!r}; expected a number in [0, 1]")
    if not isinstance(task.repeats, int) or task.repeats < 1:
        _fail(f"{where}: repeats is {task.repeats!r}; expected an int >= 1")

    config, data, found_docs = task.lm_eval_config, [], []
    with tempfile.TemporaryDirectory(prefix="capcast-check-task-") as tmp:
        if isinstance(config, (str, Path)):
            path = Path(config).expanduser()
            if not path.is_absolute():
                _fail(f"{where}: lm_eval_config {str(config)!r} is a relative path; register the task from a plugin (capcast "
                      "resolves it against the plugin's folder) or make it absolute")
            if not path.is_file():
                _fail(f"{where}: lm_eval_config {path} does not exist")
            config = _read_yaml(path)
            data = _check_data_files(f"{where} ({path.name})", config, path.parent)
        elif isinstance(config, dict):
            data = _check_data_files(where, config, None)
        elif callable(config):
            try:
                config = config(Path(tmp))
            except Exception as exc:
                raise AssertionError(f"{where}: lm_eval_config({tmp!r}) raised {type(exc).__name__}: {exc}") from exc
            if isinstance(config, (str, Path)) and Path(config).is_file():  # a built YAML (capcast.tasks.standard)
                config = _read_yaml(Path(config))
            if not isinstance(config, dict) or not config.get("task"):
                _fail(f"{where}: the build(data_dir) callable must return a dict with a 'task' key, got {type(config).__name__}"
                      f"{'' if not isinstance(config, dict) else ' without one'}")
            data = _check_data_files(f"{where} (built)", config, None)
        elif config is not None:
            _fail(f"{where}: lm_eval_config is a {type(config).__name__}; expected a YAML path, a dict, a build(data_dir) "
                  "callable or None (an lm-eval built-in task)")
        if isinstance(config, dict) and task.kind and config.get("output_type") not in (None, _OUTPUT_TYPES[task.kind]):
            _fail(f"{where}: kind {task.kind!r} but the config's output_type is {config['output_type']!r}")
        found_docs = _docs_of(data)

    if task.checker is None:
        return
    checker = task.checker
    if not callable(checker):
        _fail(f"{where}: checker must be callable as checker(sample: str, doc: dict) -> bool, got {type(checker).__name__}")
    try:
        inspect.signature(checker).bind("", {})
    except TypeError as exc:
        raise AssertionError(f"{where}: checker cannot be called as checker(sample, doc): {exc}") from exc
    except ValueError:  # no signature to inspect (a builtin): calling it below tells
        pass
    docs = list(docs) if docs is not None else found_docs
    if not docs:
        _fail(f"{where}: the checker needs docs to be checked on and none could be read from the task's data; "
              "pass check_task(task, docs=[...])")
    for doc in docs:
        for sample in GARBAGE_SAMPLES:
            try:
                verdict = checker(sample, doc)
            except Exception as exc:
                raise AssertionError(f"{where}: checker({sample[:20]!r}, doc) raised {type(exc).__name__}: {exc}; a checker must "
                                     "return False for an answer it cannot read") from exc
            if not isinstance(verdict, (bool, np.bool_)):
                _fail(f"{where}: checker({sample[:20]!r}, doc) returned {type(verdict).__name__} {verdict!r}, expected a bool")
