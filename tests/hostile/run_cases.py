"""Run hostile corpus cases in this (child) process, under time and memory limits.

Usage: ``python [-O] run_cases.py KIND [CASE_ID ...]``: every case of that kind (or the named
ones); kind 0 runs the harness's own self-test cases. The process first caps its own address
space (``RLIMIT_AS``: what it uses now plus :data:`MEMORY_LIMIT`) and CPU time
(``RLIMIT_CPU``), then for each case prints one JSON line ``{"start": id}`` before running it
and one result line after, so the parent can name the case that killed the process (a crash,
a CPU-limit signal) from the last ``start`` line.

A result holds the error's type names, whether it is a ``PackingError`` / ``LookupError``,
its message length and a prefix, the CPU seconds the call took (``resource.getrusage``: user +
system time of this process, robust on a loaded machine) and the growth of the peak resident
set since the cases began (``ru_maxrss``).
"""

from __future__ import annotations

import gc
import json
import re
import resource
import sys
import traceback
from pathlib import Path

#: Extra address space a case may use beyond what the child holds before the cases.
MEMORY_LIMIT = 200 << 20
#: CPU seconds for the whole batch (a runaway case is killed by SIGXCPU).
CPU_LIMIT = 120


def _vm_size() -> int:
    """This process's virtual memory size in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import corpus

    import fedpack

    kind = int(argv[0])
    wanted = set(argv[1:])
    pool = corpus.selftest_cases() if kind == 0 else corpus.cases()
    selected = [c for c in pool if c.kind == kind and (not wanted or c.id in wanted)]
    # Warm the paths once (imports of plugins, numpy internals) so they are not billed to the
    # first case, then set the limits around what the process holds now.
    fedpack.get_packer("sparse_coo+clipping_bit")
    for name in ("scaffold", "layer_names", "int8", "adaptive_constraint"):
        fedpack.get_packer(name)
    import fedpack.flwr

    gc.collect()
    resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + MEMORY_LIMIT, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT, CPU_LIMIT + 5))
    baseline = _peak_rss()
    for case in selected:
        print(json.dumps({"start": case.id}), flush=True)
        result: dict[str, object] = {"id": case.id}
        try:
            call = case.build()
            t0 = _cpu()
            try:
                call()
            except BaseException as exc:
                result["cpu"] = _cpu() - t0
                result["types"] = [t.__name__ for t in type(exc).__mro__]
                result["packing"] = isinstance(exc, fedpack.PackingError)
                result["lookup"] = isinstance(exc, LookupError)
                message = str(exc)
                result["length"] = len(message)
                result["message"] = message[:300]
                result["matches"] = bool(re.search(case.match, message))
            else:
                result["cpu"] = _cpu() - t0
                result["types"] = []
                result["message"] = "no error raised"
        except BaseException as exc:
            result["build_error"] = "".join(traceback.format_exception_only(exc))[:500]
        result["rss_growth"] = _peak_rss() - baseline
        print(json.dumps(result), flush=True)
    print(json.dumps({"done": len(selected)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
