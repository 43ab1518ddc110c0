#!/usr/bin/env python3
"""Post-processing for bench/proxy/run.sh: reads the raw wrk and h2load outputs it saved, prints numbers.

Load is generated only by wrk and h2load; this script never sends traffic.

  report.py median-rps FILE...        median of wrk's "Requests/sec" over the files (integer)
  report.py table RESULTS_DIR         the markdown table, ratios and target verdicts

RESULTS_DIR layout (written by run.sh):
  meta.env                            key=value lines (rates, durations, machine, noise)
  tp_ka/TARGET.REP.wrk                wrk, keep-alive
  tp_ka/TARGET.REP.cpu                "proxy_cpu_seconds" of the proxy process during that run
  tp_close/TARGET.REP.wrk             wrk with "Connection: close" (a new connection per request)
  lat_ka/TARGET.REP.{log,out}         h2load --log-file rows and h2load's own summary, keep-alive
  lat_new/TARGET.REP.{log,out}        the same, one request per connection
  noise/PHASE.TARGET.REP              compiler processes seen before/after the run
"""
import glob
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from report_common import fmt, fmt_ratio, percentile, ratio, read_meta  # noqa: E402

TARGETS = ["direct", "haproxy", "weft"]
LABEL = {"direct": "direct", "haproxy": "HAProxy", "weft": "Weft"}


def wrk_result(path):
    """(requests/s, requests, errors) of one wrk output; errors counts non-2xx/3xx and socket errors."""
    text = open(path).read()
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    if not m:
        return None
    rps = float(m.group(1))
    total = re.search(r"(\d+) requests in", text)
    errors = 0
    m2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m2:
        errors += int(m2.group(1))
    m3 = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m3:
        errors += sum(int(x) for x in m3.groups())
    return rps, int(total.group(1)) if total else 0, errors


def median_rps(paths):
    values = [r[0] for r in (wrk_result(p) for p in paths) if r]
    return int(statistics.median(values)) if values else 0


def h2load_rows(path, warmup_s):
    """Rows (start_us, status, latency_us) of one h2load --log-file, minus the first warmup_s seconds."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    if not rows:
        return [], 0.0
    t0 = min(r[0] for r in rows)
    kept = [r for r in rows if r[0] >= t0 + warmup_s * 1e6]
    if len(kept) < 2:
        return kept, 0.0
    span = (max(r[0] for r in kept) - min(r[0] for r in kept)) / 1e6
    return kept, (len(kept) - 1) / span if span > 0 else 0.0


def latency(dir_, target, warmup_s):
    """Pooled latency over all repetitions: dict with p50/p90/p99/max (µs), n, failures, achieved rate."""
    logs = sorted(glob.glob(os.path.join(dir_, f"{target}.*.log")))
    if not logs:
        return None
    lat, rates, failures, per_rep_p50 = [], [], 0, []
    h2_failed = 0
    for log in logs:
        rows, rate = h2load_rows(log, warmup_s)
        ok = sorted(r[2] for r in rows if 200 <= r[1] < 300)
        failures += sum(1 for r in rows if not 200 <= r[1] < 300)
        lat.extend(ok)
        rates.append(rate)
        per_rep_p50.append(percentile(ok, 50))
        out = log[:-4] + ".out"
        if os.path.exists(out):
            m = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
                          open(out).read())
            if m:
                h2_failed += int(m.group(1)) + int(m.group(3))
            else:
                h2_failed += 1  # no summary: h2load did not finish
    lat.sort()
    return {
        "n": len(lat),
        "p50": percentile(lat, 50),
        "p90": percentile(lat, 90),
        "p99": percentile(lat, 99),
        "max": lat[-1] if lat else float("nan"),
        "failures": max(failures, h2_failed),
        "rate": statistics.median(rates) if rates else 0.0,
        "per_rep_p50": per_rep_p50,
    }


def cpu_per_request(dir_, target):
    """Median over repetitions of the proxy's CPU time per request (µs) in the keep-alive throughput runs."""
    values = []
    for cpu in sorted(glob.glob(os.path.join(dir_, f"{target}.*.cpu"))):
        wrk = cpu[:-4] + ".wrk"
        r = wrk_result(wrk) if os.path.exists(wrk) else None
        try:
            seconds = float(open(cpu).read().split()[0])
        except (ValueError, IndexError):
            continue
        if r and r[1] > 0:
            values.append(seconds / r[1] * 1e6)
    return statistics.median(values) if values else None


def table(dir_):
    meta = read_meta(dir_)
    targets = [t for t in TARGETS if t in meta.get("targets", " ".join(TARGETS)).split()]
    warmup = float(meta.get("latency_warmup_s", "1"))
    rows = []  # (label, {target: value}, digits, higher_is_better, target-note)

    tp = {}
    tp_err = {}
    for t in targets:
        files = sorted(glob.glob(os.path.join(dir_, "tp_ka", f"{t}.*.wrk")))
        tp[t] = median_rps(files) if files else None
        tp_err[t] = sum((wrk_result(f) or (0, 0, 1))[2] for f in files)
    tpc = {}
    tpc_err = {}
    for t in targets:
        files = sorted(glob.glob(os.path.join(dir_, "tp_close", f"{t}.*.wrk")))
        tpc[t] = median_rps(files) if files else None
        tpc_err[t] = sum((wrk_result(f) or (0, 0, 1))[2] for f in files)
    lka = {t: latency(os.path.join(dir_, "lat_ka"), t, warmup) for t in targets}
    lnew = {t: latency(os.path.join(dir_, "lat_new"), t, warmup) for t in targets}
    cpu = {t: cpu_per_request(os.path.join(dir_, "tp_ka"), t) for t in targets if t != "direct"}

    reps_tp = meta.get("reps_tp", "?")
    reps_lat = meta.get("reps_lat", "?")
    rka = meta.get("rate_ka", "?")
    rnew = meta.get("rate_new", "?")
    rows.append((f"throughput, keep-alive (req/s, median of {reps_tp} × {meta.get('tp_duration_s', '?')} s)", tp, 0, "tp"))
    rows.append((f"throughput, new connection per request (req/s, median of {reps_tp} × {meta.get('tpc_duration_s', '?')} s)", tpc, 0, "tpc"))
    for name, data, rate in (("keep-alive", lka, rka), ("new connection per request", lnew, rnew)):
        for q in ("p50", "p99"):
            rows.append((f"latency {q}, {name}, at {rate} req/s (µs)",
                         {t: (data[t][q] if data[t] else None) for t in targets}, 0, f"lat-{name}-{q}"))
    rows.append(("proxy CPU time per request, keep-alive throughput run (µs)",
                 {t: cpu.get(t) for t in targets}, 1, "cpu"))

    has = {t: t in targets for t in TARGETS}
    header = "| measurement | " + " | ".join(LABEL[t] for t in targets)
    sep = "|---|" + "---|" * len(targets)
    if has["weft"] and has["haproxy"]:
        header += " | Weft/HAProxy"
        sep += "---|"
    if has["weft"] and has["direct"]:
        header += " | Weft/direct"
        sep += "---|"
    print(header + " |")
    print(sep)
    for label, values, digits, key in rows:
        line = f"| {label} | " + " | ".join(fmt(values.get(t), digits) for t in targets)
        if has["weft"] and has["haproxy"]:
            line += " | " + fmt_ratio(ratio(values.get("weft"), values.get("haproxy")))
        if has["weft"] and has["direct"]:
            line += " | " + fmt_ratio(ratio(values.get("weft"), values.get("direct")))
        print(line + " |")
    print()

    # Achieved rates and failures: a latency number is only meaningful at the rate it was taken at.
    print("Achieved fixed rates (req/s, median over repetitions, after the warm-up second): "
          + "; ".join(
              f"{LABEL[t]} keep-alive {fmt(lka[t]['rate'] if lka[t] else None)}, new-conn {fmt(lnew[t]['rate'] if lnew[t] else None)}"
              for t in targets))
    problems = []
    for t in targets:
        if tp_err.get(t):
            problems.append(f"{LABEL[t]}: {tp_err[t]} wrk errors (keep-alive)")
        if tpc_err.get(t):
            problems.append(f"{LABEL[t]}: {tpc_err[t]} wrk errors (new connection per request)")
        for name, d in (("keep-alive", lka[t]), ("new-conn", lnew[t])):
            if d and d["failures"]:
                problems.append(f"{LABEL[t]}: {d['failures']} failed/timed-out h2load requests ({name})")
    print("Errors: " + ("; ".join(problems) if problems else "none (all responses 2xx, no socket errors)"))
    n_noisy = meta.get("noisy_runs", "0")
    n_runs = meta.get("runs", "?")
    others, compiling = [], 0
    for f in glob.glob(os.path.join(dir_, "noise", "*")):
        parts = open(f).read().split()
        if len(parts) >= 3:
            others.append(int(parts[2]))
        if parts and (int(parts[0]) > 0 or int(parts[1]) > 0):
            compiling += 1
    if others:
        print(f"Other processes' CPU during the measured runs: median {statistics.median(others):.0f}%, "
              f"max {max(others)}% of one core; a Swift build/test process was running around {compiling} "
              f"of {n_runs} runs; {n_noisy} of {n_runs} runs count as noisy "
              f"(such a process seen, or others > {meta.get('noise_threshold', '15')}% of a core).")
    print()

    if has["weft"]:
        verdicts = []
        if has["haproxy"]:
            r = ratio(tp.get("weft"), tp.get("haproxy"))
            if r is not None:
                verdicts.append(("throughput (keep-alive) ≥ 1.0× HAProxy", r, r >= 1.0,
                                 f"{fmt_ratio(r)}" + ("" if r >= 1.0 else f", {100 * (1 - r):.0f}% short")))
        if has["direct"]:
            for name, d in (("keep-alive", lka), ("new connection", lnew)):
                if d.get("weft") and d.get("direct"):
                    r = ratio(d["weft"]["p50"], d["direct"]["p50"])
                    if r is not None:
                        verdicts.append((f"p50 latency ({name}) ≤ 2.5× direct", r, r <= 2.5,
                                         f"{fmt_ratio(r)}" + ("" if r <= 2.5 else f", {100 * (r / 2.5 - 1):.0f}% over")))
        for name, _, met, text in verdicts:
            print(f"- {name}: {text} — {'MET' if met else 'MISSED'}")


def main(argv):
    if len(argv) >= 2 and argv[1] == "median-rps":
        print(median_rps(argv[2:]))
    elif len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
