"""Built-in readers of external results, registered through the same ``register_readers`` hook a
third-party plugin uses."""

from capcast import hookimpl


# Registered by reference: the reader modules import pandas (~0.5 s), which `capcast plugins` and
# `capcast eval` never need; each module is imported when its reader first reads or detects.
# tests/plugins/test_startup.py checks these names and descriptions against the readers' own.
LAZY_READERS = (
    ("capcast.tables.readers.lm_eval_results", "lm-eval-results",
     "a folder of lm-eval results*.json (lm_eval --output_path); needs --spec FAMILY.yaml for params and tokens"),
    ("capcast.tables.readers.pythia", "pythia",
     "Pythia suite evals (the pythia data folder or its evals/pythia-v1): standard, deduped, zero- and five-shot"),
    ("capcast.tables.readers.pythia_baselines", "pythia-baselines",
     "OPT and BLOOM final checkpoints from the Pythia suite's evals (the pythia data folder, or evals/opt, evals/bloom)"),
    ("capcast.tables.readers.openlm", "openlm",
     "Gadre et al.'s OpenLM over-training runs (the openlm-overtraining folder or its exp_data)"),
)


def _deferred(module: str, attribute: str):
    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module).READER, attribute)(*args, **kwargs)

    call.__name__ = f"{attribute}_{module.rsplit('.', 1)[-1]}"
    return call


@hookimpl
def register_readers(register):
    from capcast.tables.readers.base import Reader

    for module, name, description in LAZY_READERS:
        register(Reader(name=name, read=_deferred(module, "read"), description=description, detect=_deferred(module, "detect")))
