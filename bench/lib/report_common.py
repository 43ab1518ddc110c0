"""Helpers shared by the benchmark report scripts (bench/*/report.py): percentiles, the run's
meta.env, and number and ratio formatting for the markdown tables."""
import os


def percentile(sorted_values, q):
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def read_meta(dir_):
    """The key=value lines of DIR/meta.env, written by run.sh."""
    meta = {}
    path = os.path.join(dir_, "meta.env")
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


def fmt(x, digits=0):
    if x is None or x != x:
        return "—"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or a != a or b != b or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"
