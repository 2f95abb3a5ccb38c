"""The per-variant latency lines the interleaved search benchmarks print."""

import numpy as np


def print_percentiles(
    times: dict[str, list[float]], points: tuple[int, ...] = (50, 99), digits: int = 1
) -> None:
    """One line a variant: its percentiles of `times` (seconds), in milliseconds."""
    for name, values in times.items():
        cells = ", ".join(f"p{p} {np.percentile(values, p) * 1000:.{digits}f} ms" for p in points)
        print(f"{name}: {cells}")
