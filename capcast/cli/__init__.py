"""The command line (see :mod:`capcast.cli.app`)."""


def main(argv=None) -> None:
    from capcast.cli.app import main as run

    run(argv)
