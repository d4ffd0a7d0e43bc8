#!/usr/bin/env python3
"""tools/bench hbone's report: results.jsonl (one line per run and path) ->
a Markdown table of medians with their spread, the targets of issue 13/13
as ratios against Istio's ztunnel (or, without it, against stunnel), and
results.json + results.md in OUT.

    hbone_report.py RESULTS.jsonl SETTINGS_JSON OUT_DIR
"""
import json
import os
import statistics
import sys

PATHS = ["direct", "stunnel", "ours", "istio"]


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def values(rows, path, key):
    out = []
    for r in rows:
        if r["path"] != path:
            continue
        v = r
        for k in key.split("."):
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            out.append(float(v))
    return out


def idle_ok(rows, path):
    """Every run opened every connection it meant to hold."""
    runs = [r["idle"] for r in rows if r["path"] == path and r.get("idle")]
    return bool(runs) and all(i["open"] == i["want"] for i in runs), runs


def med(rows, path, key):
    v = values(rows, path, key)
    return statistics.median(v) if v else None


def cell(rows, path, key, fmt, scale=1.0):
    v = values(rows, path, key)
    runs = len([r for r in rows if r["path"] == path and key.split(".")[0] in r])
    failed = " (failed in %d of %d runs)" % (runs - len(v), runs) if runs > len(v) else ""
    if not v:
        return "failed" if runs else "-"
    m = statistics.median(v) * scale
    if len(v) == 1:
        return fmt.format(m) + failed
    return (fmt + " [" + fmt + "-" + fmt + "]").format(m, min(v) * scale, max(v) * scale) + failed


def idle_cell(rows, path, key, fmt, scale):
    ok, runs = idle_ok(rows, path)
    if not runs:
        return "-"
    if not ok:
        short = min(runs, key=lambda i: i["open"])
        return "short: %d of %d opened" % (short["open"], short["want"])
    return cell(rows, path, "idle." + key, fmt, scale)


def table(rows, paths):
    lines = ["| figure (median [min-max]) | " + " | ".join(paths) + " |",
             "|---|" + "---:|" * len(paths)]
    figures = [
        ("Gbit/s, 1 stream", lambda p: cell(rows, p, "gbps1", "{:.2f}")),
        ("Gbit/s, 4 streams", lambda p: cell(rows, p, "gbps4", "{:.2f}")),
        ("64 B request/response p50 µs", lambda p: cell(rows, p, "p50_us", "{:.0f}")),
        ("64 B request/response p99 µs", lambda p: cell(rows, p, "p99_us", "{:.0f}")),
        ("new connections/s (pooled HBONE)", lambda p: cell(rows, p, "cps", "{:.0f}")),
        # direct needs no handshake (the ceiling), stunnel does one per connection anyway
        ("new connections/s (unpooled: a TLS handshake each)",
         lambda p: cell(rows, p, "cps" if p in ("direct", "stunnel") else "cps_unpooled", "{:.0f}")),
        ("proxies' CPU s per GB, 1 stream", lambda p: "-" if p == "direct" else cell(rows, p, "cpu_gb1", "{:.2f}")),
        ("proxies' CPU s per GB, 4 streams", lambda p: "-" if p == "direct" else cell(rows, p, "cpu_gb4", "{:.2f}")),
        ("KB per idle connection, client side", lambda p: idle_cell(rows, p, "client_bytes", "{:.1f}", 1 / 1024)),
        ("KB per idle connection, server side", lambda p: idle_cell(rows, p, "server_bytes", "{:.1f}", 1 / 1024)),
        ("RSS MB with the connections held, client side", lambda p: idle_cell(rows, p, "rss_client_kb", "{:.0f}", 1 / 1024)),
        ("RSS MB with the connections held, server side", lambda p: idle_cell(rows, p, "rss_server_kb", "{:.0f}", 1 / 1024)),
    ]
    for label, f in figures:
        lines.append("| " + label + " | " + " | ".join(f(p) for p in paths) + " |")
    return lines


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def targets(rows, ref):
    """(figure, ours, ref, ratio, target, met) against ref (istio or stunnel)."""
    out = []

    def add(label, key, goal, better_low, extra=None):
        o, r = med(rows, "ours", key), med(rows, ref, key)
        q = ratio(o, r)
        met = None
        if q is not None and goal is not None:
            met = q <= goal if better_low else q >= goal
            if extra is not None and o is not None:
                met = met and extra(o)
        out.append((label, o, r, q, goal, better_low, met))

    add("proxies' CPU s/GB, 1 stream", "cpu_gb1", 0.6, True)
    add("proxies' CPU s/GB, 4 streams", "cpu_gb4", 0.6, True)
    for side in ("client", "server"):
        ok_o, _ = idle_ok(rows, "ours")
        ok_r, _ = idle_ok(rows, ref)
        o = med(rows, "ours", "idle.%s_bytes" % side) if ok_o else None
        r = med(rows, ref, "idle.%s_bytes" % side) if ok_r else None
        q = ratio(o, r)
        met = None if q is None else (q <= 0.7 and o <= 4096)
        out.append(("bytes per idle connection, %s side (and <= 4 KB)" % side, o, r, q, 0.7, True, met))
    add("throughput, 1 stream", "gbps1", 1.3, False)
    add("throughput, 4 streams", "gbps4", 1.3, False)
    for key in ("p50_us", "p99_us"):
        d = med(rows, "direct", key)
        o, r = med(rows, "ours", key), med(rows, ref, key)
        ao = o - d if o is not None and d is not None else None
        ar = r - d if r is not None and d is not None else None
        q = ratio(ao, ar) if ar and ar > 0 else None
        out.append(("added 64 B latency %s (over direct)" % key.split("_")[0], ao, ar, q, 0.7, True,
                    None if q is None else q <= 0.7))
    add("new connections/s, pooled", "cps", 1.5, False)
    if ref == "istio":
        add("new connections/s, unpooled", "cps_unpooled", 1.5, False)
    else:
        o, r = med(rows, "ours", "cps_unpooled"), med(rows, ref, "cps")
        out.append(("new connections/s, unpooled", o, r, ratio(o, r), 1.5, False, None))
    return out


def fmt(v):
    if v is None:
        return "-"
    return "{:.0f}".format(v) if abs(v) >= 100 else "{:.2f}".format(v)


def main():
    rows = load(sys.argv[1])
    settings = json.loads(sys.argv[2])
    out_dir = sys.argv[3]
    paths = [p for p in PATHS if any(r["path"] == p for r in rows)]
    ref = "istio" if "istio" in paths else "stunnel"
    md = ["# tools/bench hbone", "",
          "%d run(s), %d s per figure, %d CPUs shared by everything; idle memory with %d connections held (stunnel: at most 1,000, a thread each)%s." % (
              settings["runs"], settings["seconds"], settings["cpus"], settings["held_connections"],
              "; Istio's ztunnel: %s" % settings["istio"] if settings.get("istio") else ""),
          ""]
    md += table(rows, paths)
    md += ["", "## Ours against %s" % ("Istio's ztunnel (issue 13/13's targets)" if ref == "istio" else "stunnel (no --istio-ztunnel given)"), "",
           "| figure | ours | %s | ratio | target | met |" % ref, "|---|---:|---:|---:|---:|---|"]
    for label, o, r, q, goal, low, met in targets(rows, ref):
        tgt = "-" if ref != "istio" else ("<= %.1f" if low else ">= %.1f") % goal
        m = "-" if ref != "istio" or met is None else ("yes" if met else "**no**")
        md.append("| %s | %s | %s | %s | %s | %s |" % (label, fmt(o), fmt(r), "-" if q is None else "%.2f" % q, tgt, m))
    for p in paths:
        ok, runs = idle_ok(rows, p)
        if runs and not ok:
            md.append("")
            md.append("**%s: idle-memory figure failed**: not every connection opened (see the table)." % p)
    text = "\n".join(md) + "\n"
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"settings": settings, "runs": rows,
                   "targets": [dict(zip(("figure", "ours", ref, "ratio", "target", "lower_is_better", "met"), t))
                               for t in targets(rows, ref)]}, f, indent=1)
    sys.stdout.write(text)
    sys.stdout.write("\n(%s and %s)\n" % (os.path.join(out_dir, "results.md"), os.path.join(out_dir, "results.json")))


if __name__ == "__main__":
    main()
