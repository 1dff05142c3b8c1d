"""The ``simulate`` subcommand: write a simulated (synthetic) Panel folder."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def register(sub: argparse._SubParsersAction) -> None:
    from cluster_econ.simulate.presets import PRESETS

    p = sub.add_parser(
        "simulate",
        help="simulate a synthetic panel of industrial clusters (the demo universe and others)",
        description="Simulate enterprise survey panels from the endogenous model of cluster-based "
        "industrial development (initiation, quantity expansion, quality improvement or "
        "stagnation) and write them as a Panel folder (Parquet + manifest). The data are "
        "SYNTHETIC and flagged so in the manifest. Exit 0 on success, 2 on bad usage.",
    )
    p.add_argument("--preset", default="demo", choices=sorted(PRESETS),
                   help="configuration: demo (12 clusters, ~5,000 firms), small (3 clusters), "
                        "large (~1 million firm-years; scale with --firms)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same tables)")
    p.add_argument("--firms", type=int, default=None, metavar="N",
                   help="scale cluster markets so that about N firms are ever founded")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="output Panel folder")
    p.add_argument("--truth", action="store_true",
                   help="also write truth.json (true parameters) and truth/*.parquet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cluster_econ.errors import ConfigError
    from cluster_econ.simulate import simulate

    if args.firms is not None and args.firms <= 0:
        raise ConfigError(f"--firms must be a positive number of firms, got {args.firms}")
    t0 = time.perf_counter()
    try:
        sim = simulate(preset=args.preset, seed=args.seed, n_firms=args.firms)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    t1 = time.perf_counter()
    out = sim.panel.to_parquet(args.out)
    if args.truth:
        write_truth(sim.truth, Path(args.out))
    ey = sim.panel.enterprise_year
    print(f"simulated {len(sim.panel.enterprise):,d} enterprises, {len(ey):,d} enterprise-years "
          f"in {t1 - t0:.1f} s (SYNTHETIC, preset {args.preset}, seed {args.seed}); wrote {out}",
          file=sys.stderr)
    return EXIT_OK


def write_truth(truth: Any, directory: Path) -> None:
    """Write the truth's parameters as JSON and its tables as Parquet under ``directory``."""
    import dataclasses

    import pandas as pd

    from cluster_econ.io.parquet import _write_parquet, atomic_write_bytes

    params: dict[str, Any] = {}
    for f in dataclasses.fields(truth):
        value = getattr(truth, f.name)
        if isinstance(value, pd.DataFrame):
            _write_parquet(value, directory / "truth" / f"{f.name}.parquet")
        else:
            params[f.name] = value
    text = json.dumps(params, indent=2, sort_keys=True, default=_default) + "\n"
    atomic_write_bytes(directory / "truth.json", text.encode())


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
