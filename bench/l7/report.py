#!/usr/bin/env python3
"""Post-processing for bench/l7/run.sh: reads the raw wrk and h2load outputs it saved, prints numbers.

Load is generated only by wrk and h2load; this script never sends traffic.

  report.py table RESULTS_DIR         the markdown table, ratios and the target verdict

RESULTS_DIR layout (written by run.sh):
  meta.env                            key=value lines (rate, durations, noise)
  tp_ka/TARGET.REP.wrk                wrk --latency, keep-alive
  tp_ka/TARGET.REP.cpu                CPU seconds of the proxy process during that run
  lat_ka/TARGET.REP.{log,out}         h2load --log-file rows and h2load's summary, keep-alive, fixed rate
  noise/PHASE.TARGET.REP              build/test processes before/after the run, others' CPU %
"""
import glob
import os
import re
import statistics
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "lib"))
sys.path.insert(0, os.path.join(here, "..", "proxy"))
from report_common import fmt, fmt_ratio, ratio, read_meta  # noqa: E402
from report import cpu_per_request, latency, median_rps, wrk_result  # noqa: E402  (bench/proxy/report.py)

TARGETS = ["direct", "haproxy", "weft"]
LABEL = {"direct": "direct", "haproxy": "HAProxy (mode http)", "weft": "Weft (protocol: http)"}
UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}


def wrk_percentile(path, q):
    """wrk --latency's q% value (µs) of one output."""
    m = re.search(rf"^\s+{q}%\s+([0-9.]+)(us|ms|s)\s*$", open(path).read(), re.M)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(dir_):
    meta = read_meta(dir_)
    targets = [t for t in TARGETS if t in meta.get("targets", " ".join(TARGETS)).split()]
    warmup = float(meta.get("latency_warmup_s", "1"))
    tp, tp_err, wp50, wp99 = {}, {}, {}, {}
    for t in targets:
        files = sorted(glob.glob(os.path.join(dir_, "tp_ka", f"{t}.*.wrk")))
        tp[t] = median_rps(files) if files else None
        tp_err[t] = sum((wrk_result(f) or (0, 0, 1))[2] for f in files)
        wp50[t] = median_of([wrk_percentile(f, 50) for f in files])
        wp99[t] = median_of([wrk_percentile(f, 99) for f in files])
    lka = {t: latency(os.path.join(dir_, "lat_ka"), t, warmup) for t in targets}
    cpu = {t: cpu_per_request(os.path.join(dir_, "tp_ka"), t) for t in targets if t != "direct"}

    reps, dur, rate = meta.get("reps_tp", "?"), meta.get("tp_duration_s", "?"), meta.get("rate_ka", "?")
    rows = [
        (f"throughput, keep-alive (req/s, median of {reps} × {dur} s wrk -t2 -c64)", tp, 0),
        ("latency p50 under that load (µs, wrk --latency, median over runs)", wp50, 0),
        ("latency p99 under that load (µs, wrk --latency, median over runs)", wp99, 0),
        (f"latency p50, keep-alive at a fixed {rate} req/s (µs, h2load)", {t: lka[t]["p50"] if lka[t] else None for t in targets}, 0),
        (f"latency p99, keep-alive at a fixed {rate} req/s (µs, h2load)", {t: lka[t]["p99"] if lka[t] else None for t in targets}, 0),
        ("proxy CPU time per request, throughput runs (µs)", {t: cpu.get(t) for t in targets}, 1),
    ]
    both = "weft" in targets and "haproxy" in targets
    print("| measurement | " + " | ".join(LABEL[t] for t in targets) + (" | Weft/HAProxy |" if both else " |"))
    print("|---|" + "---|" * len(targets) + ("---|" if both else ""))
    for label, values, digits in rows:
        line = f"| {label} | " + " | ".join(fmt(values.get(t), digits) for t in targets)
        if both:
            line += " | " + fmt_ratio(ratio(values.get("weft"), values.get("haproxy")))
        print(line + " |")
    print()
    print("Achieved fixed rates (req/s): " + "; ".join(f"{LABEL[t]} {fmt(lka[t]['rate'] if lka[t] else None)}" for t in targets))
    problems = []
    for t in targets:
        if tp_err.get(t):
            problems.append(f"{LABEL[t]}: {tp_err[t]} wrk errors (non-2xx or socket errors)")
        if lka[t] and lka[t]["failures"]:
            problems.append(f"{LABEL[t]}: {lka[t]['failures']} failed/timed-out h2load requests")
    print("Errors: " + ("; ".join(problems) if problems else "none (all responses 2xx, no socket errors)"))
    others, compiling = [], 0
    for f in glob.glob(os.path.join(dir_, "noise", "*")):
        parts = open(f).read().split()
        if len(parts) >= 3:
            others.append(int(parts[2]))
            if int(parts[0]) > 0 or int(parts[1]) > 0:
                compiling += 1
    if others:
        print(f"Other processes' CPU during the measured runs: median {statistics.median(others):.0f}%, max {max(others)}% "
              f"of one core; a Swift build/test process was running around {compiling} of {meta.get('runs', '?')} runs; "
              f"{meta.get('noisy_runs', '?')} runs count as noisy.")
    print()
    if both:
        r = ratio(tp.get("weft"), tp.get("haproxy"))
        if r is not None:
            met = r >= 1.0
            print(f"- throughput (keep-alive) ≥ 1.0× HAProxy: {fmt_ratio(r)}"
                  + ("" if met else f", {100 * (1 - r):.0f}% short") + f" — {'MET' if met else 'MISSED'}")


def main(argv):
    if len(argv) == 3 and argv[1] == "table":
        table(argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
