"""Two panels for the crash-safety tests, built the same way in the test and in the child process it
kills (a panel's folder is byte-identical whoever writes it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cluster_econ as ce


def old_panel() -> ce.Panel:
    ent = pd.DataFrame({"enterprise_id": ["a", "b"], "cluster_id": "k", "country": "KEN"})
    ey = pd.DataFrame({"enterprise_id": ["a", "b", "a"], "year": [2000, 2000, 2001], "sales": [1.0, 2.0, 3.0]})
    return ce.Panel({"enterprise": ent, "enterprise_year": ey})


def new_panel() -> ce.Panel:
    """400 enterprises in 4 countries, 10 rounds: 45 files when partitioned by country and round."""
    rng = np.random.default_rng(1)
    ent = pd.DataFrame({"enterprise_id": [f"N{i}" for i in range(400)], "cluster_id": "k",
                        "country": np.repeat(["KEN", "ETH", "GHA", "TZA"], 100)})
    ey = pd.DataFrame({"enterprise_id": np.repeat(ent["enterprise_id"], 10).to_numpy(),
                       "year": np.tile(np.arange(2000, 2010), 400), "sales": rng.lognormal(5, 1, 4000),
                       "survey_round": np.tile([f"r{k}" for k in range(10)], 400)})
    return ce.Panel({"enterprise": ent, "enterprise_year": ey})
