"""Workloads 1 and 2 in C++, no Python: the tapegrad core vs LibTorch.

Drives the binaries of bench/cpp (tapegrad_bench, and libtorch_bench when
CMake found LibTorch): configures and builds them with CMake in
``build/bench`` when needed (reused afterwards; ninja makes an up-to-date
build a no-op), runs them at the worker's thread count and returns rows in the
format of the other workloads, so ``bench/run.py --only cpp-w1,cpp-w2`` prints
them in its table. Without LibTorch, the LibTorch rows say why.

The two libraries cannot share a process (see Note [LibTorch in the benchmark
build] in bench/cpp/CMakeLists.txt), so the rounds are interleaved by process:
the binaries run alternately, ``passes`` times each, each run timing a share
of the rounds (the cases inside one run are interleaved round by round; see
Note [C++ benchmark timing] in bench/cpp/bench_common.h). Sample i of one
library is paired with sample i of the other for the ratios.

Environment: TAPEGRAD_BENCH_BUILD_DIR overrides the build directory,
TAPEGRAD_BENCH_JOBS the build's -j (default 2).
"""

import json
import math
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TAPEGRAD_BENCH_BUILD_DIR", os.path.join(ROOT, "build", "bench"))
BINARIES = {"tapegrad": "tapegrad_bench", "LibTorch": "libtorch_bench"}
LIBRARIES = tuple(BINARIES)
N_OPS = 64


def _torch_prefix():
    """torch.utils.cmake_prefix_path, asked of a subprocess (torch stays unloaded here)."""
    try:
        out = subprocess.run([sys.executable, "-c",
                              "import torch.utils; print(torch.utils.cmake_prefix_path)"],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _cache_value(name):
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def _run_logged(cmd, log):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        log("    " + " ".join(cmd) + "\n" + r.stdout[-4000:] + r.stderr[-4000:])
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed with exit status {r.returncode}")
    return r


def build(log):
    """Configures (once) and builds the bench binaries; returns {library: path or reason}."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise RuntimeError("cmake is not on PATH")
    if _cache_value("TAPEGRAD_BUILD_BENCH") != "ON":
        cmd = [cmake, "-S", ROOT, "-B", BUILD, "-DTAPEGRAD_BUILD_BENCH=ON",
               f"-DPython_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja") and not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
            cmd += ["-G", "Ninja"]
        prefix = _torch_prefix()
        if prefix:
            cmd.append(f"-DCMAKE_PREFIX_PATH={prefix}")
        log(f"  configuring {BUILD}" + (" (with LibTorch)" if prefix else " (no torch found)"))
        _run_logged(cmd, log)
    jobs = os.environ.get("TAPEGRAD_BENCH_JOBS", "2")
    log(f"  building the C++ benchmarks in {BUILD} (-j {jobs}; the first LibTorch build "
        "takes minutes)")
    _run_logged([cmake, "--build", BUILD, "-j", jobs], log)
    out = {}
    for lib, name in BINARIES.items():
        path = os.path.join(BUILD, "bench", "cpp", name)
        if os.path.exists(path):
            out[lib] = path
        elif lib == "LibTorch" and _cache_value("TAPEGRAD_BENCH_LIBTORCH") == "OFF":
            out[lib] = f"n/a (switched off in {BUILD}: -DTAPEGRAD_BENCH_LIBTORCH=OFF)"
        elif lib == "LibTorch":
            out[lib] = ("n/a (LibTorch not found by CMake: reconfigure with "
                        "-DCMAKE_PREFIX_PATH=<torch.utils.cmake_prefix_path>)")
        else:
            out[lib] = f"n/a ({name} was not built)"
    return out


def _timing(measure):
    """repeats / block_s / warmup_s from run.py's functools.partial(common.measure, ...)."""
    kw = getattr(measure, "keywords", {}) or {}
    return kw.get("repeats", 9), kw.get("block_s", 0.25), kw.get("warmup_s", 0.3)


def run_binaries(workload, cfg, measure, log):
    """Runs every binary for `workload` ("w1" or "w2"); returns (lines by library, info)."""
    repeats, block_s, warmup_s = _timing(measure)
    threads = int(cfg.get("threads") or os.environ.get("OMP_NUM_THREADS") or 1)
    bins = build(log)
    live = [lib for lib, p in bins.items() if not p.startswith("n/a")]
    passes = max(1, min(3, repeats))
    rounds = math.ceil(repeats / passes)
    lines = {lib: [] for lib in live}
    errors = {}
    for k in range(passes):
        order = live[k % len(live):] + live[:k % len(live)] if live else []
        for lib in order:
            if lib in errors:
                continue
            cmd = [bins[lib], "--threads", str(threads), "--only", workload,
                   "--rounds", str(rounds), "--block-ms", str(1000 * block_s),
                   "--warmup-ms", str(1000 * warmup_s)]
            if workload == "w2":
                cmd += ["--batches", ",".join(map(str, cfg.get("ner_batches", [1, 32, 512])))]
            log(f"    {lib}: pass {k + 1}/{passes}")
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                errors[lib] = (f"error: {os.path.basename(bins[lib])} exit status "
                               f"{r.returncode}: {r.stderr.strip()[-300:]}")
                log(f"    {errors[lib]}")
            lines[lib] += [json.loads(s) for s in r.stdout.splitlines() if s.startswith("{")]
    results = {lib: (errors.get(lib) or lines[lib]) for lib in live}
    results.update({lib: p for lib, p in bins.items() if lib not in live})
    return results, threads


def _groups(results, unit):
    """Rows of run.py's format: [{"config", "results": {library: [s per call] or str}}]."""
    configs = []
    for lines in results.values():
        if isinstance(lines, list):
            for d in lines:
                if d.get("unit") == unit and d["config"] not in configs:
                    configs.append(d["config"])
    groups = []
    for c in configs:
        res = {}
        for lib, lines in results.items():
            if not isinstance(lines, list):
                res[lib] = lines
                continue
            samples = [s for d in lines if d.get("config") == c for s in d["samples_s"]]
            res[lib] = samples or "n/a (not measured)"
        groups.append({"config": c, "results": res})
    return groups


def _per_node_note(results):
    """Workload 1's per-node figures, as report_w1_derived in bench_common.h computes
    them (medians over rounds), over the rounds of all passes."""
    import statistics
    parts = []
    for lib, lines in results.items():
        if not isinstance(lines, list):
            continue
        s = {}
        for d in lines:
            if "samples_s" in d:
                s.setdefault(d["config"], []).extend(d["samples_s"])
        fb, f, ng = s.get("forward+backward"), s.get("forward"), s.get("forward, no grad")
        if not fb or not f or not ng:
            continue
        nodes = N_OPS + 1  # the 64 ops and the sum
        per_node = statistics.median(fb) * 1e9 / nodes
        bwd = statistics.median(b - a for a, b in zip(f, fb)) * 1e9 / nodes
        rec = statistics.median(b - a for a, b in zip(ng, f)) * 1e9 / N_OPS
        parts.append(f"{lib} {per_node:.0f} ns record+backward, of which backward "
                     f"{bwd:.0f} ns; recording adds {rec:.0f} ns/op to executing the op")
    return "; ".join(parts)


class _Workload:
    def __init__(self, wid, workload, title, unit, per_call, scale):
        self.wid, self.workload, self.title = wid, workload, title
        self.unit, self.per_call, self.scale = unit, per_call, scale

    def run(self, cfg, measure, log):
        try:
            results, threads = run_binaries(self.workload, cfg, measure, log)
        except (RuntimeError, OSError) as e:
            results = {lib: f"error: {e}" for lib in LIBRARIES}
            threads = None
        out = {"id": self.wid, "title": self.title, "unit": self.unit,
               "per_call": self.per_call, "scale": self.scale, "libraries": LIBRARIES,
               "groups": _groups(results, self.unit), "threads": threads}
        if not out["groups"]:  # nothing ran: one row per library with the reason
            out["groups"] = [{"config": "all", "results": results}]
        if self.workload == "w1":
            out["note"] = (f"C++ binaries, no Python. Per tape node (64 ops + sum), {threads} "
                           "thread(s): " + (_per_node_note(results) or "n/a") + ".")
        else:
            out["note"] = ("C++ binaries, no Python; same init and batches for both (bench/cpp/"
                           "bench_common.h), so the first losses should agree.")
            out["check"] = {lib: (next((d["losses"] for d in lines if d.get("config") == "check"),
                                       "no check line") if isinstance(lines, list) else lines)
                            for lib, lines in results.items()
                            if isinstance(lines, list) or lines.startswith("error")}
        return out


# ns per op: run.py prints median * scale / per_call.
w1 = _Workload("cpp-w1", "w1", "Workload 1 in C++: per-op overhead, tapegrad core vs LibTorch "
               "(64 elementwise ops on 16 floats)", "ns/op", N_OPS, 1e9)
w2 = _Workload("cpp-w2", "w2", "Workload 2 in C++: window NER training step, tapegrad core vs "
               "LibTorch (20k x 50 embeddings, 250 -> 100 -> 5, SGD + sparse rows)",
               "steps/s", 1, 1e6)
