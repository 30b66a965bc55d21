"""tapegrad vs PyTorch eager, JAX jit and NumPy by hand, at the same thread count.

    python bench/run.py                      # all workloads, 1 and 2 threads
    python bench/run.py --quick --threads 1  # smoke run, about a minute
    python bench/run.py --only w2 --repeats 11 --json out.json --markdown out.md

Workloads: w1 per-op overhead, w2 window-NER training step (batch 1/32/512),
w3 GEMM-bound MLP (batch 256, Adam); w2 and w3 also time their GEMMs alone
through the BLAS tapegrad uses (the "BLAS floor"). cpp-w1 and cpp-w2 (opt in
with --only) run w1 and w2 as C++ binaries, tapegrad core vs LibTorch, with
no Python (bench/cpp, built by bench/workloads/cpp.py).

Threads. Each thread count runs in its own subprocess of this script, because
the BLAS behind NumPy and XLA read their thread settings when they load. The
subprocess gets OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = MKL_NUM_THREADS = n
(NumPy's bundled OpenBLAS, and any OpenMP runtime), and for n = 1
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
(single-threaded Eigen matmuls in XLA:CPU; for n > 1 XLA keeps its default,
which uses all cores); inside it calls tg.set_num_threads(n) (the core's
threads, which also run tapegrad's GEMMs in blocks on its OpenBLAS), torch's
set_num_threads(n) and set_num_interop_threads(1); the ctypes BLAS floor runs
the same OpenBLAS with n threads of its own. Those settings do not hold every
library to n cores (JAX at one thread kept 1.9 cores busy), so the subprocess
for n threads is also pinned to n CPUs (sched_setaffinity, before any library
loads; --no-pin turns it off), and each row reports its CPU time / wall time.

Timing: warm-up (also compiles the JAX functions), a calibrated block of calls
of about --block-s seconds per library, --repeats rounds with the libraries'
order rotated each round and a --settle-s pause after each block; medians,
IQR (min-max under 5 repeats), and ratios
as medians of per-round ratios. See bench/workloads/common.py.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

WORKLOADS = ("w1", "w2", "w3", "cpp-w1", "cpp-w2")
DEFAULT_WORKLOADS = ("w1", "w2", "w3")  # cpp-*: opt in (the first LibTorch build takes minutes)


def thread_env(n):
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(n)
    flags = env.get("XLA_FLAGS", "")
    if n == 1:
        flags = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    if flags.strip():
        env["XLA_FLAGS"] = flags.strip()
    env["JAX_PLATFORMS"] = "cpu"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def pin_to_cpus(n):
    """Confines this process (and every thread it starts later) to n of its CPUs.

    Returns the CPUs, or None where there is nothing to pin (n covers them all, or
    no sched_setaffinity). The thread settings alone do not hold every library to n
    cores: JAX at XLA_FLAGS=...intra_op_parallelism_threads=1 kept 1.9 cores busy
    on the MLP (process CPU time / wall time; 17.9 ms a step, 32.7 ms pinned to
    one core), which put it at 159% of a one-thread BLAS floor."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    avail = sorted(os.sched_getaffinity(0))
    if n >= len(avail):
        return None
    os.sched_setaffinity(0, avail[:n])
    return avail[:n]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- worker

def worker(args):
    """Runs in a subprocess with the thread environment already set."""
    import functools
    import warnings
    warnings.filterwarnings("ignore")
    from workloads import common

    n = args.worker_threads
    # Before any library starts a thread, so that every thread inherits it.
    cpus = pin_to_cpus(n) if args.pin else None
    info = {"threads": n, "cpus": cpus,
            "env": {k: os.environ.get(k) for k in
                    ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")}}
    tg = common.lib("tapegrad")
    tg.set_num_threads(n)
    info["tapegrad_threads"] = tg.get_num_threads()
    try:
        torch = common.lib("torch")
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        info["torch_threads"] = torch.get_num_threads()
    except common.Unavailable:
        pass
    try:
        from workloads import blas_floor
        blas_floor.set_threads(n)
    except Exception as e:  # noqa: BLE001 - reported, the fallback still runs
        info["floor_threads_error"] = repr(e)

    cfg = {"ner_batches": [int(b) for b in args.ner_batches.split(",")], "threads": n}
    measure = functools.partial(common.measure, repeats=args.repeats, block_s=args.block_s,
                                warmup_s=args.warmup_s, log=log, settle_s=args.settle_s)
    from workloads import cpp, mlp, ner, overhead
    mods = {"w1": overhead, "w2": ner, "w3": mlp, "cpp-w1": cpp.w1, "cpp-w2": cpp.w2}
    out = {"info": info, "workloads": []}
    for w in args.only:
        log(f"[{n} thread(s)] {w}")
        out["workloads"].append(mods[w].run(cfg, measure, log))
    with open(args.worker_out, "w") as f:
        json.dump(out, f)


# --------------------------------------------------------------------- parent

def machine_info():
    model, name, simd = platform.processor() or platform.machine(), None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name is None:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and simd is None:
                    flags = set(line.split(":", 1)[1].split())
                    # the widest vector ISA: which kernels tapegrad (built for this CPU) and
                    # OpenBLAS run; VMs sold under one model name come with either
                    simd = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags),
                                "none")
                if name is not None and simd is not None:
                    break
    except OSError:
        pass
    model = name or model
    if simd:
        model = f"{model} ({simd})"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": affinity,
            "os": platform.platform(), "python": platform.python_version(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None}


def versions():
    from importlib import metadata
    out = {}
    for dist in ("tapegrad", "torch", "jax", "jaxlib", "numpy", "scipy-openblas32"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        import numpy as np
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["numpy BLAS"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


def fmt(x):
    if x is None:
        return ""
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def render(workload_runs, only):
    """workload_runs: list of (threads, worker output). Returns markdown text."""
    from workloads.common import CPU_USE, FLOOR, LIBRARIES, paired_ratio, summarize
    lines = []
    for wid in only:
        per_thread = [(n, w) for n, out in workload_runs for w in out["workloads"]
                      if w["id"] == wid]
        if not per_thread:
            continue
        w0 = per_thread[0][1]
        unit, k = w0["unit"], w0["per_call"]
        rate = unit == "steps/s"
        has_floor = any(FLOOR in g["results"] for _, w in per_thread for g in w["groups"])
        lines += [f"### {w0['title']}", ""]
        head = ["threads", "config", "library", f"median {unit}", "spread",
                "time vs tapegrad"]
        if has_floor:
            head.append("BLAS floor / time")
        has_cpu = any(CPU_USE in g["results"] for _, w in per_thread for g in w["groups"])
        if has_cpu:
            head.append("CPU / wall")
        lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for n, w in per_thread:
            for g in w["groups"]:
                res = g["results"]
                base = res.get("tapegrad")
                floor = res.get(FLOOR)
                # reference rows (e.g. the floor plus the embedding traffic) only where run
                refs = w0.get("references", {})
                labels = {FLOOR: f"*{FLOOR} (GEMMs alone)*", **refs}
                names = list(w0.get("libraries", LIBRARIES)) + [n for n in (FLOOR, *refs)
                                                                 if n in res]
                for name in names:
                    r = res.get(name, "n/a (not run)")
                    label = labels.get(name, name)
                    row = [str(n), g["config"], label]
                    if not isinstance(r, list) or not r:
                        row += [str(r) if r else "n/a", "", ""] + ([""] if has_floor else [])
                        row += [""] if has_cpu else []
                    else:
                        med, lo, hi, kind = summarize(r)
                        if rate:
                            row += [fmt(1 / med), f"{fmt(1 / hi)}-{fmt(1 / lo)} ({kind})"]
                        else:
                            c = w0.get("scale", 1e6) / k
                            row += [fmt(med * c), f"{fmt(lo * c)}-{fmt(hi * c)} ({kind})"]
                        ratio = paired_ratio(r, base) if name != "tapegrad" else 1.0
                        row.append("" if ratio is None else f"{ratio:.2f}x")
                        if has_floor:
                            fr = paired_ratio(floor, r) if name != FLOOR else None
                            row.append("" if fr is None else f"{100 * fr:.0f}%")
                        if has_cpu:
                            use = res.get(CPU_USE, {}).get(name)
                            row.append(f"{summarize(use)[0]:.2f}" if use else "")
                    lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        replay = w0.get("replay_row")
        if replay:  # the replay targets are stated against the peers, not eager tapegrad
            lines += [f"_{replay}, time of each peer / replay time (paired medians): " + "; ".join(
                f"{n} threads {g['config']}: " + ", ".join(
                    f"{peer} {ratio:.1f}x" for peer in ("PyTorch eager", "JAX jit", "NumPy by hand")
                    if (ratio := paired_ratio(g["results"].get(peer), g["results"].get(replay)))
                    is not None)
                for n, w in per_thread for g in w["groups"]) + "._", ""]
        for key in ("note", "rows_note"):
            lines += [f"_{t}_" for t in sorted({w[key] for _, w in per_thread if w.get(key)})]
        for n, w in per_thread[:1]:
            chk = w.get("check")
            if chk:
                parts = ", ".join(f"{name} " + ("/".join(f"{v:.5f}" for v in vals)
                                                 if isinstance(vals, list) else str(vals))
                                  for name, vals in chk.items())
                lines.append(f"_Same-math check, losses of the first 3 steps from the same init: "
                             f"{parts}._")
        lines.append("")
    return "\n".join(lines)


def check_agreement(workload_runs):
    warnings = []
    for n, out in workload_runs:
        for w in out["workloads"]:
            chk = w.get("check") or {}
            ok = {k: v for k, v in chk.items() if isinstance(v, list)}
            ref = ok.get("NumPy by hand") or ok.get("tapegrad")
            for name, vals in chk.items():
                if not isinstance(vals, list):
                    warnings.append(f"{w['id']} ({n} threads): {name} check failed: {vals}")
                elif ref and any(abs(a - b) > 1e-3 * max(1.0, abs(b)) for a, b in zip(vals, ref)):
                    warnings.append(f"{w['id']} ({n} threads): {name} losses {vals} differ "
                                    f"from the reference {ref}")
    return warnings


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per library (default 9; 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 3 repeats of short blocks")
    p.add_argument("--only", default=",".join(DEFAULT_WORKLOADS),
                   help="comma-separated subset of " + ",".join(WORKLOADS))
    p.add_argument("--json", default=None, help="also write all samples and metadata here")
    p.add_argument("--markdown", default=None, help="also write the report here")
    p.add_argument("--block-s", type=float, default=None,
                   help="seconds per timed block (default 0.25; 0.04 with --quick)")
    p.add_argument("--warmup-s", type=float, default=None,
                   help="minimum warm-up seconds per library (default 0.3; 0.05 with --quick)")
    p.add_argument("--settle-s", type=float, default=None,
                   help="pause after each timed block, so that one library's spinning "
                        "worker threads never run into the next one's block (default 0.15; "
                        "0 with --quick)")
    p.add_argument("--ner-batches", default="1,32,512")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not confine an n-thread run to n CPUs (by default it is, "
                        "so that no library uses more cores than it was given)")
    p.add_argument("--worker-threads", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in args.only if w not in WORKLOADS]
    if bad:
        p.error(f"--only: unknown workload(s) {bad}; choose from {','.join(WORKLOADS)}")
    if args.repeats is None:
        args.repeats = 3 if args.quick else 9
    if args.block_s is None:
        args.block_s = 0.04 if args.quick else 0.25
    if args.warmup_s is None:
        args.warmup_s = 0.05 if args.quick else 0.3
    if args.settle_s is None:
        args.settle_s = 0.0 if args.quick else 0.15

    if args.worker_threads is not None:
        return worker(args)

    threads = [int(t) for t in args.threads.split(",")]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    runs = []
    for n in threads:
        with tempfile.TemporaryDirectory() as tmp:
            out_path = os.path.join(tmp, "out.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--worker-threads", str(n),
                   "--worker-out", out_path, "--repeats", str(args.repeats),
                   "--block-s", str(args.block_s), "--warmup-s", str(args.warmup_s),
                   "--settle-s", str(args.settle_s),
                   "--only", ",".join(args.only), "--ner-batches", args.ner_batches]
            if not args.pin:
                cmd.append("--no-pin")
            rc = subprocess.call(cmd, env=thread_env(n))
            if rc != 0 or not os.path.exists(out_path):
                log(f"worker for {n} thread(s) failed with exit status {rc}")
                return 1
            with open(out_path) as f:
                runs.append((n, json.load(f)))

    mach, vers = machine_info(), versions()
    head = [f"## tapegrad benchmarks ({started})", "",
            f"- machine: {mach['cpu']}, {mach['cores']} cores ({mach['usable_cores']} usable), "
            f"{mach['os']}, Python {mach['python']}"
            + (f", load average at the end {mach['loadavg'][0]:.2f}" if mach["loadavg"] else ""),
            "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
            f"- threads: {', '.join(map(str, threads))} (same count for every library; "
            "tg.set_num_threads, torch.set_num_threads, OPENBLAS/OMP/MKL_NUM_THREADS for NumPy, "
            "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false for JAX at 1 thread, and the "
            "process pinned to n CPUs where that is fewer than all of them (lines below); "
            "tapegrad's "
            "OpenBLAS, which the BLAS floor shares, loads with "
            f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT', '16 (tapegrad default)')}, "
            "see Note [OpenBLAS worker spin])",
            f"- timing: {args.repeats} rounds of ~{args.block_s}s blocks per library, order "
            "rotated each round, "
            + (f"a {args.settle_s}s pause after each block (other libraries' spinning BLAS "
               "threads never run into a block), " if args.settle_s > 0 else "no pause between blocks, ")
            + "after warm-up; median and spread of the per-call time; "
            "'time vs tapegrad' = median per-round ratio of the library's time to tapegrad's "
            "(> 1: slower than tapegrad); 'BLAS floor / time' = share of the step's time the "
            "GEMMs alone would take (100% = at the floor); 'CPU / wall' = the process's CPU "
            "time over wall time in the library's blocks (median; ~n when it keeps n cores "
            "busy, spinning workers included)",
            f"- command: python bench/run.py {' '.join(sys.argv[1:] if argv is None else argv)}",
            ""]
    for n, out in runs:
        i = out["info"]
        cpus = i.get("cpus")
        head.append(f"- {n} thread(s): tapegrad {i.get('tapegrad_threads')}, torch "
                    f"{i.get('torch_threads', 'n/a')}, "
                    + (f"process pinned to CPU(s) {cpus}, " if cpus else "not pinned, ")
                    + f"env {i['env']}")
    head.append("")
    text = "\n".join(head) + "\n" + render(runs, args.only)
    warn = check_agreement(runs)
    if warn:
        text += "\n**Warning: the libraries disagree on the first losses:**\n\n" + \
                "\n".join(f"- {x}" for x in warn) + "\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "machine": mach, "versions": vers,
                       "args": {k: v for k, v in vars(args).items() if not k.startswith("worker")},
                       "runs": [{"threads": n, **out} for n, out in runs]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
