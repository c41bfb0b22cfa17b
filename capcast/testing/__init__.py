"""Testing helpers for capcast and for plugin authors.

- :mod:`.tiny`: tiny real checkpoints (a character tokenizer and random-init Llama models) and a
  family YAML naming them, built in seconds on a CPU with nothing downloaded;
- :mod:`.checks`: :func:`check_law` and :func:`check_task`, the conformance checks a plugin author
  runs in their own tests (the way scikit-learn ships ``check_estimator``).
"""

from capcast.testing.tiny import (  # noqa: F401
    TINY_SIZES, build_char_tokenizer, build_tiny_checkpoint, build_tiny_family, non_embedding_params,
)


def __getattr__(name: str):
    if name in ("check_law", "check_task"):
        from capcast.testing import checks

        return getattr(checks, name)
    raise AttributeError(f"module 'capcast.testing' has no attribute {name!r}")
