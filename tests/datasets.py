"""Small datasets that are not house prices, as a new user would bring them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def bikes(path: Path) -> Path:
    rng = np.random.default_rng(1)
    rows: list[list[object]] = []
    for _ in range(400):
        temperature, humidity = rng.uniform(-5, 35), rng.uniform(20, 95)
        season = rng.choice(["winter", "spring", "summer", "autumn"])
        rentals = 50 + 12 * temperature - 1.5 * humidity + (80 if season == "summer" else 0)
        rows.append([round(temperature, 1), round(humidity, 1), season, round(rentals, 1)])
    return write_csv(path, ["temperature", "humidity", "season", "rentals"], rows)
