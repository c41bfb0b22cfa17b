"""The record store: Parquet parts plus DuckDB views (see :mod:`capcast.store.parts`)."""

from capcast.store.files import (  # noqa: F401  (every writer of the store commits files the same way)
    describe_mismatch, fsync_dir, path_slug, register_parquet_view, show_setting, with_keys, write_atomically, write_json,
    write_parquet, write_parquet_atomic,
)
from capcast.store.parts import (  # noqa: F401
    CHOICES_SCHEMA, FORMAT_FILE, FORMAT_VERSION, KEY_COLUMNS, KEY_FIELDS, RECORD_FILES, RUNS_SCHEMA, SAMPLES_SCHEMA, Store,
)
