"""The one adapter between capcast and lm-evaluation-harness: the ONLY package that imports ``lm_eval``
(with :mod:`capcast.evaluation.backend`, the lm-eval model class it registers).

It loads a checkpoint through one of lm-eval's model backends (``hf`` by default, ``vllm`` on a
GPU), runs ``lm_eval.simple_evaluate(..., log_samples=True)`` (the Python API, never the CLI) and
turns ``results["samples"]`` into typed column tables:

- multiple choice: one row per (doc, choice) with the summed log-likelihood, the number of
  continuation tokens exactly as lm-eval tokenised them, UTF-8 bytes, is_greedy and is_gold;
- generative: one row per (doc, sample) for ALL ``repeats`` samples (lm-eval's default
  ``take_first`` filter keeps only the first: capcast reads ``resps``, not ``filtered_resps``)
  with the task checker's verdict.

Capcast's own tasks run with ``TaskManager(include_defaults=False)`` on local data, so nothing is
downloaded; an lm-eval built-in task (a :class:`capcast.Task` with ``lm_eval_config=None``) goes
through the default task index and may download its dataset from the hub.

One module per concern: :mod:`.checks` (device, backend, dtype, weights, seed), :mod:`.options`
(``--model-args``, ``--gen-kwargs``, ``--num-fewshot``), :mod:`.environment` (offline switches,
quiet libraries, versions), :mod:`.model` (loading through a backend), :mod:`.tasks` (preparing
tasks, ``--include-path``), :mod:`.filters` (``filter_list`` and metric verdicts), :mod:`.running`
(``simple_evaluate`` runs and their records, export replays), :mod:`.requests` (requests and run
plans built without a model) and :mod:`.sampling` (sampled generations). Callers use this package's
names (``harness.load_model``, ...), so that tests can replace them here.
"""

from capcast.evaluation.harness.checks import (
    BACKENDS, SHARED_CONTEXT_BACKEND, check_backend, check_device, check_dtype, check_seed, check_weights,
)
from capcast.evaluation.harness.environment import prepare_environment, versions
from capcast.evaluation.harness.filters import context_choices, metric_verdict, response_filter
from capcast.evaluation.harness.model import LoadedModel, load_model, resolve_device
from capcast.evaluation.harness.options import apply_lm_eval_options, check_model_args, parse_args_string
from capcast.evaluation.harness.requests import PlannedRun, build_requests, generation_requests, plan_run
from capcast.evaluation.harness.running import TaskRun, _evaluate, replay_samples, run_task
from capcast.evaluation.harness.sampling import draw_generations, generate_samples
from capcast.evaluation.harness.tasks import (
    PreparedTask, check_sampling, check_task, effective_num_fewshot, include_path_tasks, is_lm_eval_task, prepare_task, task_docs,
)
# weights_hash is re-exported: run manifests and callers fingerprint checkpoints through the harness.
from capcast.evaluation.records import weights_hash

__all__ = [
    "BACKENDS", "SHARED_CONTEXT_BACKEND", "LoadedModel", "PlannedRun", "PreparedTask", "TaskRun",
    "_evaluate",  # private, but tests run lm-eval through it directly
    "apply_lm_eval_options", "build_requests", "check_backend", "check_device", "check_dtype", "check_model_args",
    "check_sampling", "check_seed", "check_task", "check_weights", "context_choices", "draw_generations",
    "effective_num_fewshot", "generate_samples", "generation_requests", "include_path_tasks", "is_lm_eval_task",
    "load_model", "metric_verdict", "parse_args_string", "plan_run", "prepare_environment", "prepare_task",
    "replay_samples", "resolve_device", "response_filter", "run_task", "task_docs", "versions", "weights_hash",
]
