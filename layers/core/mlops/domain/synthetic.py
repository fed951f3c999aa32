"""A seeded synthetic housing market with drift knobs that mirror what moves a real one.

``conditions_for_month`` is the default scenario later months of the demo follow: prices drift
(concept drift), interest rates jump (economic conditions), a new location opens (new category)
and buyers move to bigger homes (feature shift). Pure numpy, deterministic for a seed.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# location -> (price multiplier, mean distance to the centre in km)
LOCATIONS: dict[str, tuple[float, float]] = {
    "downtown": (1.60, 1.5),
    "riverside": (1.35, 4.0),
    "uptown": (1.20, 6.0),
    "suburbs": (1.00, 14.0),
    "countryside": (0.70, 35.0),
}
NEW_LOCATIONS: dict[str, tuple[float, float]] = {"harbor": (1.85, 3.0)}
PROPERTY_TYPES: dict[str, tuple[float, float]] = {  # type -> (share, price multiplier)
    "house": (0.55, 1.00),
    "townhouse": (0.25, 0.92),
    "condo": (0.20, 0.85),
}
COLUMNS = [
    "sqft",
    "bedrooms",
    "bathrooms",
    "year_built",
    "lot_size",
    "distance_to_center",
    "interest_rate",
    "location",
    "property_type",
    "price",
]


@dataclass(frozen=True)
class MarketConditions:
    """The knobs. Defaults are month 0, the market the first model is trained on."""

    price_level: float = 1.0  # concept drift: same house, different price
    size_shift: float = 0.0  # feature shift: relative change in the sqft buyers go for
    interest_rate: float = 4.0  # economic conditions: mean mortgage rate in percent
    new_location_share: float = 0.0  # new category: share of sales in locations never seen
    noise: float = 0.06  # relative price noise (log-normal sigma)
    # buyer mix: share of houses among sales (townhouses and condos split the rest in their
    # usual ratio); None keeps PROPERTY_TYPES' shares
    house_share: float | None = None
    # where buyers go: share of sales in the countryside (the other districts split the rest
    # in their usual ratio); None keeps the usual 15 %
    countryside_share: float | None = None
    # price noise of countryside sales (few comparable sales: wider); None keeps ``noise``
    countryside_noise: float | None = None


def conditions_for_month(month: int) -> MarketConditions:
    """The default scenario: calm for three months, then rates, a new district and bigger homes."""
    if month < 0:
        raise ValueError("month must be >= 0")
    conditions = MarketConditions(price_level=1.01**month)
    if month >= 3:  # rates jump; prices fall with affordability, then recover with inflation
        conditions = replace(conditions, interest_rate=6.5, price_level=0.97 * 1.04 ** (month - 3))
    if month >= 4:  # a new waterfront district opens
        conditions = replace(conditions, new_location_share=min(0.1 + 0.05 * (month - 4), 0.3))
    if month >= 5:  # buyers move to bigger homes
        conditions = replace(conditions, size_shift=min(0.15 + 0.05 * (month - 5), 0.35))
    return conditions


def generate(rows: int, conditions: MarketConditions, seed: int = 0) -> dict[str, npt.NDArray[Any]]:
    """``rows`` house sales as columns (numeric float64, categorical str)."""
    rng = np.random.default_rng(seed)
    known = list(LOCATIONS)
    new = list(NEW_LOCATIONS)
    is_new = rng.random(rows) < conditions.new_location_share
    location = np.where(
        is_new,
        rng.choice(new, size=rows),
        rng.choice(known, size=rows, p=_location_shares(conditions)),
    ).astype(object)
    table = LOCATIONS | NEW_LOCATIONS
    loc_mult = np.array([table[loc][0] for loc in location])
    loc_dist = np.array([table[loc][1] for loc in location])

    types = list(PROPERTY_TYPES)
    property_type = rng.choice(types, size=rows, p=_type_shares(conditions)).astype(object)
    type_mult = np.array([PROPERTY_TYPES[t][1] for t in property_type])

    sqft = np.clip(
        rng.lognormal(np.log(1700), 0.35, rows) * (1 + conditions.size_shift), 350, 15000
    )
    bedrooms = np.clip(np.round(sqft / 600 + rng.normal(0, 0.7, rows)), 1, 10)
    bathrooms = np.clip(np.round(bedrooms * 0.6 + rng.normal(0.3, 0.5, rows)), 1, 8)
    year_built = np.clip(np.round(rng.normal(1985, 22, rows)), 1880, 2026)
    lot_size = np.where(
        property_type == "condo", 0.0, np.round(sqft * rng.uniform(1.5, 6.0, rows) * loc_dist**0.3)
    )
    distance = np.round(np.clip(rng.gamma(4.0, loc_dist / 4.0), 0.1, 150), 2)
    interest_rate = np.round(np.clip(rng.normal(conditions.interest_rate, 0.25, rows), 0.5, 20), 2)

    value = (
        140.0 * sqft * loc_mult * type_mult
        + 9000 * bedrooms
        + 14000 * bathrooms
        - 900 * np.clip(2026 - year_built, 0, 100)
        + 1.5 * lot_size
        - 1800 * distance
    )
    # Higher rates cut what buyers can pay: about 7% per point over 4%.
    affordability = np.exp(-0.07 * (interest_rate - 4.0))
    price = np.maximum(value, 40000) * affordability * conditions.price_level
    noise: float | npt.NDArray[np.float64] = conditions.noise
    if conditions.countryside_noise is not None:
        noise = np.where(location == "countryside", conditions.countryside_noise, noise)
    price = np.round(price * rng.lognormal(0.0, noise, rows), -2)
    return {
        "sqft": np.round(sqft),
        "bedrooms": bedrooms,
        "bathrooms": bathrooms,
        "year_built": year_built,
        "lot_size": lot_size,
        "distance_to_center": distance,
        "interest_rate": interest_rate,
        "location": location,
        "property_type": property_type,
        "price": price,
    }


LOCATION_SHARES = (0.15, 0.2, 0.2, 0.3, 0.15)  # of sales, in LOCATIONS' order


def _location_shares(conditions: MarketConditions) -> list[float]:
    countryside = list(LOCATIONS).index("countryside")
    return _with_share(LOCATION_SHARES, countryside, conditions.countryside_share, "countryside")


def _type_shares(conditions: MarketConditions) -> list[float]:
    shares = [share for share, _ in PROPERTY_TYPES.values()]
    houses = list(PROPERTY_TYPES).index("house")
    return _with_share(shares, houses, conditions.house_share, "house")


def _with_share(shares: Sequence[float], index: int, share: float | None, name: str) -> list[float]:
    """``shares`` with entry ``index`` set to ``share`` and the others scaled to the rest."""
    if share is None:
        return list(shares)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name}_share must be from 0 to 1")
    others = sum(shares) - shares[index]
    return [share if i == index else s / others * (1.0 - share) for i, s in enumerate(shares)]


def csv_bytes(columns: dict[str, npt.NDArray[Any]], *, compress: bool = False) -> bytes:
    """Columns as CSV bytes (gzip-compressed with ``compress``)."""
    names = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(
        [_cell(v) for v in row] for row in zip(*(columns[n] for n in names), strict=True)
    )
    data = buffer.getvalue().encode()
    return gzip.compress(data, mtime=0) if compress else data


def write_csv(columns: dict[str, npt.NDArray[Any]], path: str | Path) -> Path:
    """Write columns as CSV (gzip when the name ends in .gz)."""
    path = Path(path)
    path.write_bytes(csv_bytes(columns, compress=path.suffix == ".gz"))
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return value
