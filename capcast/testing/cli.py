"""Run the real CLI in-process from a test: no interpreter start-up, output captured by pytest."""

from __future__ import annotations


def run_in_process(args: list[str], capsys) -> tuple[int, str, str]:
    """``capcast ARGS`` through :func:`capcast.cli.main`: (exit status, stdout, stderr)."""
    from capcast import cli

    try:
        cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err
