"""An example capcast plugin: one multiple-choice task whose data ships inside the package.

Copy this folder, rename the package and the entry point, and replace the task.
"""

from pathlib import Path

import capcast

DATA = Path(__file__).parent / "opposites.jsonl"


@capcast.hookimpl
def register_tasks(register):
    register(
        capcast.Task(
            name="example_opposites",
            description="Pick the opposite of a word (4 choices).",
            chance=0.25,
            # A dict with the keys of an lm-eval task YAML; data paths must be absolute.
            lm_eval_config={
                "task": "example_opposites",
                "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(DATA)}},
                "test_split": "test",
                "output_type": "multiple_choice",
                "doc_to_text": "The opposite of {{word}} is",
                "doc_to_choice": "{{choices}}",
                "doc_to_target": "{{answer}}",
                "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            },
        )
    )
