"""The ``cluster-econ`` command line.

Each subcommand lives beside the code it drives, in a module with ``register(subparsers)`` that
adds its parser and sets ``func``. Exit codes: 0 success, 1 a check failed (validation
violations, a failing replication exhibit or specification), 2 bad usage or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cluster_econ._version import __version__
from cluster_econ.errors import ClusterEconError

# order = order in --help
COMMAND_MODULES = [
    "cluster_econ.harmonize.command",  # normalize, validate, schema
    "cluster_econ.simulate.command",  # simulate
    "cluster_econ.phases.command",  # phases
    "cluster_econ.hypotheses.command",  # test
    "cluster_econ.report.command",  # replicate, report
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cluster-econ",
        description="Enterprise survey panels to tested propositions of cluster-based industrial "
        "development (Otsuka and Sonobe). Run 'cluster-econ COMMAND --help' for each command.",
    )
    parser.add_argument("--version", action="version", version=f"cluster-econ {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except ClusterEconError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
