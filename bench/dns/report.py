#!/usr/bin/env python3
"""Post-processing for bench/dns/run.sh: reads the dnsperf outputs and memory samples it saved, prints
the markdown tables. This script never sends traffic.

  report.py table RESULTS_DIR         the markdown tables, ratios and the target verdict
  report.py percentiles FILE...       p50/p90/p99/max (µs) of dnsperf -v outputs, pooled

RESULTS_DIR layout (written by run.sh):
  meta.env                 key=value lines (durations, rate, noise counts)
  tp/TARGET.REP.out        dnsperf -v output of a max-throughput run (per-query lines and the summary)
  tp/TARGET.REP.cpu        CPU seconds (user+system) of the server process during that run
  lat/TARGET.REP.{out,cpu} the same at the fixed rate (-Q)
  noise/PHASE.TARGET.REP   "builders_before builders_after other_cpu_percent"
  memory.tsv               services, VmRSS kB, VmHWM kB, RssAnon kB, apply s, resolvable-after s, files
"""
import glob
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from report_common import fmt, fmt_ratio, percentile, ratio, read_meta  # noqa: E402

TARGETS = ["weft", "unbound"]
LABEL = {"weft": "Weft", "unbound": "unbound"}
VERBOSE = re.compile(r"^> (\S+) \S+ \S+ ([0-9.]+)$")


def parse(path, warmup_fraction=0.0):
    """dnsperf output -> dict: qps, sent, completed, lost, avg_us, codes, latencies (µs, sorted; the
    first warmup_fraction of the per-query lines dropped), timeouts (per-query "T" lines)."""
    text = open(path).read()
    r = {"path": path}
    m = re.search(r"Queries per second:\s+([0-9.]+)", text)
    r["qps"] = float(m.group(1)) if m else None
    m = re.search(r"Queries sent:\s+(\d+)", text)
    r["sent"] = int(m.group(1)) if m else 0
    m = re.search(r"Queries completed:\s+(\d+)", text)
    r["completed"] = int(m.group(1)) if m else 0
    m = re.search(r"Queries lost:\s+(\d+)", text)
    r["lost"] = int(m.group(1)) if m else None
    m = re.search(r"Average Latency \(s\):\s+([0-9.]+)", text)
    r["avg_us"] = float(m.group(1)) * 1e6 if m else None
    m = re.search(r"Response codes:\s+(.*)", text)
    r["codes"] = m.group(1).strip() if m else ""
    lat, timeouts = [], 0
    for line in text.splitlines():
        if line.startswith("> T ") or line == "> T":
            timeouts += 1
            continue
        v = VERBOSE.match(line)
        if v:
            lat.append(float(v.group(2)) * 1e6)
    drop = int(len(lat) * warmup_fraction)
    r["latencies"] = sorted(lat[drop:])
    r["timeouts"] = timeouts
    return r


def phase(dir_, name, target, warmup_fraction):
    """Per-target summary of one phase over its repetitions."""
    outs = sorted(glob.glob(os.path.join(dir_, name, f"{target}.*.out")))
    if not outs:
        return None
    runs = [parse(p, warmup_fraction) for p in outs]
    pooled = sorted(x for r in runs for x in r["latencies"])
    cpu_per_q = []
    for r in runs:
        cpu = r["path"][:-4] + ".cpu"
        if os.path.exists(cpu) and r["completed"]:
            cpu_per_q.append(float(open(cpu).read().split()[0]) / r["completed"] * 1e6)
    qps = [r["qps"] for r in runs if r["qps"] is not None]
    avg = [r["avg_us"] for r in runs if r["avg_us"] is not None]
    return {
        "qps": statistics.median(qps) if qps else None,
        "qps_all": qps,
        "avg": statistics.median(avg) if avg else None,
        "p50": percentile(pooled, 50),
        "p90": percentile(pooled, 90),
        "p99": percentile(pooled, 99),
        "p999": percentile(pooled, 99.9),
        "max": pooled[-1] if pooled else float("nan"),
        "n": len(pooled),
        "lost": sum(r["lost"] or 0 for r in runs),
        "missing_summary": sum(1 for r in runs if r["qps"] is None),
        "cpu": statistics.median(cpu_per_q) if cpu_per_q else None,
        "codes": runs[0]["codes"],
    }


def table(dir_):
    meta = read_meta(dir_)
    targets = [t for t in TARGETS if t in meta.get("targets", " ".join(TARGETS)).split()]
    warm = float(meta.get("latency_warmup_fraction", "0.1"))
    tp = {t: phase(dir_, "tp", t, warm) for t in targets}
    lat = {t: phase(dir_, "lat", t, warm) for t in targets}
    both = "weft" in targets and "unbound" in targets
    reps, dur = meta.get("reps_tp", "?"), meta.get("tp_duration_s", "?")
    lreps, ldur = meta.get("reps_lat", "?"), meta.get("lat_duration_s", "?")
    rate = int(meta.get("rate", "0") or 0)

    rows = []
    if any(tp.values()):
        rows.append((f"max throughput (queries/s, median of {reps} × {dur} s)", {t: tp[t] and tp[t]["qps"] for t in targets}, 0))
        rows.append(("— latency avg at max throughput (µs, dnsperf's average; median of the runs)",
                     {t: tp[t] and tp[t]["avg"] for t in targets}, 0))
        for q in ("p50", "p99"):
            rows.append((f"— latency {q} at max throughput (µs, all runs pooled)", {t: tp[t] and tp[t][q] for t in targets}, 0))
        rows.append(("— server CPU time per query at max throughput (µs)", {t: tp[t] and tp[t]["cpu"] for t in targets}, 1))
    if any(lat.values()):
        rows.append((f"fixed rate {rate:,} queries/s: achieved (queries/s, median of {lreps} × {ldur} s)",
                     {t: lat[t] and lat[t]["qps"] for t in targets}, 0))
        rows.append(("— latency avg (µs, dnsperf's average)", {t: lat[t] and lat[t]["avg"] for t in targets}, 0))
        for q in ("p50", "p90", "p99", "p999"):
            label = "p99.9" if q == "p999" else q
            rows.append((f"— latency {label} (µs, all runs pooled)", {t: lat[t] and lat[t][q] for t in targets}, 0))
        rows.append(("— server CPU time per query (µs)", {t: lat[t] and lat[t]["cpu"] for t in targets}, 1))

    if rows:
        header = "| measurement | " + " | ".join(LABEL[t] for t in targets) + (" | Weft/unbound |" if both else " |")
        print(header)
        print("|---|" + "---|" * len(targets) + ("---|" if both else ""))
        for label, values, digits in rows:
            line = f"| {label} | " + " | ".join(fmt(values.get(t), digits) for t in targets)
            if both:
                line += " | " + fmt_ratio(ratio(values.get("weft"), values.get("unbound")))
            print(line + " |")
        print()
        per_run = "; ".join(f"{LABEL[t]} " + ", ".join(fmt(q) for q in tp[t]["qps_all"]) for t in targets if tp[t])
        if per_run:
            print(f"Max-throughput runs, queries/s each: {per_run}.")
        problems = []
        for t in targets:
            for name, d in (("max throughput", tp[t]), ("fixed rate", lat[t])):
                if d and d["lost"]:
                    problems.append(f"{LABEL[t]}: {d['lost']} queries lost (no answer within 2 s) in the {name} runs")
                if d and d["missing_summary"]:
                    problems.append(f"{LABEL[t]}: {d['missing_summary']} {name} run(s) without a dnsperf summary")
        print("Lost queries: " + ("; ".join(problems) if problems else "none") + ". Response codes (first run): "
              + "; ".join(f"{LABEL[t]} {tp[t]['codes']}" for t in targets if tp[t]) + ".")
        others, compiling, n_runs = [], 0, meta.get("runs", "?")
        for f in glob.glob(os.path.join(dir_, "noise", "*")):
            parts = open(f).read().split()
            if len(parts) >= 3:
                others.append(int(parts[2]))
                if int(parts[0]) > 0 or int(parts[1]) > 0:
                    compiling += 1
        if others:
            print(f"Other processes' CPU during the measured runs: median {statistics.median(others):.0f}%, "
                  f"max {max(others)}% of one core; a Swift build/test process was running around {compiling} "
                  f"of {n_runs} runs; {meta.get('noisy_runs', '0')} of {n_runs} runs count as noisy "
                  f"(such a process seen, or others > {meta.get('noise_threshold', '15')}% of a core).")
        if both and tp.get("weft") and tp.get("unbound"):
            r = ratio(tp["weft"]["qps"], tp["unbound"]["qps"])
            if r is not None:
                verdict = "MET" if r >= 1.0 else f"MISSED, {100 * (1 - r):.0f}% short"
                print(f"- max throughput ≥ 1.0× unbound: {fmt_ratio(r)} — {verdict}")
        print()

    mem_path = os.path.join(dir_, "memory.tsv")
    mem = []
    if os.path.exists(mem_path):
        for line in open(mem_path):
            p = line.split()
            if len(p) >= 7:
                mem.append((int(p[0]), int(p[1]), int(p[2]), int(p[3]), float(p[4]), float(p[5]), int(p[6])))
    if mem:
        base = mem[0]
        print(f"Memory of the whole `weft server` process (API, store, controllers, agent, proxy, DNS), services "
              f"applied in files of {meta.get('mem_batch', '?')}, read from /proc/PID/status once the last one resolved and the zone stopped changing (SOA serial the same for 3 s):")
        print()
        print("| services | VmRSS (MiB) | Δ VmRSS | VmHWM (MiB) | RssAnon (MiB) | Δ RssAnon | Δ RssAnon per service | apply since the row above (s) | then resolvable (s) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for count, rss, hwm, anon, apply_s, resolve_s, files in mem:
            d_rss = (rss - base[1]) / 1024
            d_anon = (anon - base[3]) / 1024
            per = f"{(anon - base[3]) / count:.1f} KiB" if count and count != base[0] else "—"
            files_note = f" ({files} file{'s' if files > 1 else ''})" if files else ""
            print(f"| {count:,} | {rss / 1024:.1f} | {'—' if count == base[0] else f'{d_rss:+.1f}'} | {hwm / 1024:.1f} | "
                  f"{anon / 1024:.1f} | {'—' if count == base[0] else f'{d_anon:+.1f}'} | {per} | "
                  f"{apply_s:.1f}{files_note} | {resolve_s:.1f} |")
        print()


def main(argv):
    if len(argv) == 3 and argv[1] == "table":
        table(argv[2])
    elif len(argv) >= 3 and argv[1] == "percentiles":
        pooled = sorted(x for p in argv[2:] for x in parse(p)["latencies"])
        print(" ".join(f"{q}={percentile(pooled, v):.0f}" for q, v in (("p50", 50), ("p90", 90), ("p99", 99)))
              + f" max={pooled[-1] if pooled else float('nan'):.0f} n={len(pooled)}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
