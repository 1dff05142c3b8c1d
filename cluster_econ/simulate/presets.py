"""Named configurations: ``demo`` (the built-in demo universe), ``large`` (for benchmarks) and
``small`` (three clusters, for quick checks).

The demo clusters are patterned on the cases Otsuka and Sonobe discuss (garments, motorcycles,
machine tools, low-voltage electrical goods and printed circuit boards in Japan, Taiwan and China;
garments, footwear and metalwork in Kenya, Ethiopia and Ghana). Their numbers are invented: the
data they generate are synthetic and labelled so everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cluster_econ.simulate.config import ClusterSpec, SimulationConfig


@dataclass(frozen=True)
class CountryInfo:
    """Money and prices of one country in the simulator (all invented, plausible orders)."""

    currency: str
    inflation: float          # annual rate of the GDP deflator
    lcu_per_unit: float       # local currency units (base-year prices) per real unit
    usd_rate_base: float      # LCU per USD in the base year
    female_share: float       # share of women among managers


COUNTRIES: dict[str, CountryInfo] = {
    "JPN": CountryInfo("JPY", 0.03, 300_000.0, 108.0, 0.08),
    "TWN": CountryInfo("TWD", 0.03, 90_000.0, 31.0, 0.10),
    "CHN": CountryInfo("CNY", 0.04, 8_000.0, 8.28, 0.12),
    "KEN": CountryInfo("KES", 0.08, 40_000.0, 76.0, 0.25),
    "ETH": CountryInfo("ETB", 0.06, 3_000.0, 8.2, 0.10),
    "GHA": CountryInfo("GHS", 0.12, 150.0, 0.54, 0.05),
}

GARMENTS = ("shirts", "trousers", "knitwear", "uniforms", "children's wear")
MOTORCYCLES = ("50cc motorcycles", "125cc motorcycles", "engines", "frames and parts")
MACHINE_TOOLS = ("lathes", "milling machines", "machining centres", "grinders")
LV_ELECTRICAL = ("switches", "circuit breakers", "relays", "contactors")
PCB = ("single-sided boards", "double-sided boards", "multilayer boards")
FOOTWEAR = ("leather shoes", "sandals", "boots")
METALWORK = ("vehicle parts", "agricultural tools", "household metalware", "machine repair")


def demo_clusters() -> tuple[ClusterSpec, ...]:
    c = ClusterSpec
    return (
        c("JPN-HIROSHIMA-GARMENT", "JPN", "JPY", "1410", "garments", "simple", GARMENTS,
          start_year=1952, initiation_years=5, expansion_years=11, n_scale=460),
        c("CHN-ZHEJIANG-GARMENT", "CHN", "CNY", "1410", "garments", "simple", GARMENTS,
          start_year=1978, initiation_years=4, expansion_years=12, n_scale=560),
        c("JPN-HAMAMATSU-MOTORCYCLE", "JPN", "JPY", "3091", "motorcycles", "complex", MOTORCYCLES,
          start_year=1948, initiation_years=5, expansion_years=9, n_scale=280),
        c("CHN-CHONGQING-MOTORCYCLE", "CHN", "CNY", "3091", "motorcycles", "complex", MOTORCYCLES,
          start_year=1980, initiation_years=6, expansion_years=13, n_scale=330),
        c("TWN-TAICHUNG-MACHINETOOL", "TWN", "TWD", "2822", "machine tools", "complex",
          MACHINE_TOOLS, start_year=1962, initiation_years=6, expansion_years=10, n_scale=380),
        c("CHN-WENZHOU-LVELECTRIC", "CHN", "CNY", "2710", "low-voltage electrical goods",
          "complex", LV_ELECTRICAL, start_year=1979, initiation_years=5, expansion_years=11,
          n_scale=510),
        c("TWN-TAOYUAN-PCB", "TWN", "TWD", "2610", "printed circuit boards", "complex", PCB,
          start_year=1970, initiation_years=5, expansion_years=10, n_scale=310),
        c("CHN-JIANGSU-PCB", "CHN", "CNY", "2610", "printed circuit boards", "complex", PCB,
          start_year=1986, initiation_years=5, expansion_years=13, n_scale=330),
        c("KEN-NAIROBI-GARMENT", "KEN", "KES", "1410", "garments", "simple", GARMENTS,
          start_year=1978, initiation_years=6, expansion_years=None, n_scale=440, training=True),
        c("ETH-ADDISABABA-FOOTWEAR", "ETH", "ETB", "1520", "footwear", "simple", FOOTWEAR,
          start_year=1976, initiation_years=6, expansion_years=None, n_scale=380, training=True),
        c("GHA-KUMASI-METALWORK", "GHA", "GHS", "2599", "metal products", "complex", METALWORK,
          start_year=1975, initiation_years=5, expansion_years=None, n_scale=480, training=True),
        c("KEN-NAIROBI-METALWORK", "KEN", "KES", "2599", "metal products", "simple", METALWORK,
          start_year=1977, initiation_years=5, expansion_years=None, n_scale=360, training=False),
    )


DEMO_LABEL = "cluster_econ demo universe (SYNTHETIC)"


def demo() -> SimulationConfig:
    """The demo universe: 12 clusters, about 30 years each, a few thousand firms."""
    return SimulationConfig(clusters=demo_clusters(), label=DEMO_LABEL)


def small() -> SimulationConfig:
    """Three demo clusters (simple, complex, stagnant) at their demo size, for quick checks."""
    picks = ("CHN-ZHEJIANG-GARMENT", "TWN-TAICHUNG-MACHINETOOL", "ETH-ADDISABABA-FOOTWEAR")
    clusters = tuple(c for c in demo_clusters() if c.cluster_id in picks)
    return SimulationConfig(clusters=clusters, label="cluster_econ small simulated panel (SYNTHETIC)")


LARGE_SCALE = 23.0


def large() -> SimulationConfig:
    """The demo clusters with markets scaled up: about 1 million firm-years by default."""
    clusters = tuple(dataclasses.replace(c, n_scale=c.n_scale * LARGE_SCALE, n_founders=6)
                     for c in demo_clusters())
    return SimulationConfig(clusters=clusters, label="cluster_econ large simulated panel (SYNTHETIC)")


PRESETS = {"demo": demo, "large": large, "small": small}


def preset(name: str) -> SimulationConfig:
    """The configuration of a named preset."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(PRESETS)}") from None


def scale_to_firms(config: SimulationConfig, n_firms: int, current_firms: float) -> SimulationConfig:
    """Scale every cluster's market so the expected number of firms ever founded becomes about
    ``n_firms`` (entry is endogenous, so the count is approximate)."""
    if n_firms <= 0:
        raise ValueError(f"n_firms must be positive, got {n_firms}")
    factor = n_firms / current_firms
    clusters = tuple(dataclasses.replace(c, n_scale=max(5.0, c.n_scale * factor))
                     for c in config.clusters)
    return dataclasses.replace(config, clusters=clusters)
