"""Cold start: what ``import fedpack; fedpack.get_packer(name)`` costs on top of ``import numpy``.

Every measurement runs in a fresh interpreter. The child imports numpy, then fedpack, asks for
the packer, and reports both durations (``time.perf_counter`` around each step), so the
"fedpack" column is exactly the cost over ``import numpy`` (fedpack needs numpy anyway).
Interpreter start-up is common to everything and is not counted.

Two scenarios, measured in the same run and interleaved so that machine noise hits both alike:

- ``installed``: the environment as it is (its real plugins only);
- ``+N plugins``: N fake distributions added to ``PYTHONPATH``, each declaring one packer entry
  point (never imported: only the requested packer is loaded, and listing imports nothing).

The requested packer must be installed (``--packer``, default ``clipping_bit``). Goal:
``import fedpack`` + ``get_packer`` at most 30 ms over ``import numpy`` with 200 plugins.

    python benchmarks/cold_start.py                 # 41 repetitions per scenario
    python benchmarks/cold_start.py --quick         # smoke run for CI (5 repetitions)
    python benchmarks/cold_start.py --json results.json --profile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOAL_MS = 30.0

CHILD = """
import sys, time
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import fedpack
packer = fedpack.get_packer({name!r})
t2 = time.perf_counter()
heavy = sorted(m for m in ("torch", "flwr", "importlib.metadata") if m in sys.modules)
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, type(packer).__module__, ",".join(heavy))
"""


def make_fake_plugins(root: Path, count: int) -> None:
    """Write ``count`` fake installed distributions, one packer entry point each."""
    for i in range(count):
        dist = root / f"fedpack_fake_{i:03d}-1.0.{i}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fedpack-fake-{i:03d}\nVersion: 1.0.{i}\n\n",
            encoding="utf-8",
        )
        (dist / "entry_points.txt").write_text(
            f"[console_scripts]\nfake-{i:03d} = fedpack_fake_{i:03d}:main\n\n"
            f"[fedpack.packers]\nfake_{i:03d} = fedpack_fake_{i:03d}\n",
            encoding="utf-8",
        )
        (dist / "RECORD").write_text("", encoding="utf-8")


def child_env(extra_path: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDPACK_")}
    env.pop("PYTHONPATH", None)
    # measure the normal installed state: modules load from cached bytecode (written by the
    # warm-up run), as they do after pip install, not compiled from source on every start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if extra_path is not None:
        env["PYTHONPATH"] = extra_path
    return env


def run_child(name: str, env: dict[str, str]) -> tuple[float, float, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(name=name)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"the child failed:\n{done.stderr}")
    numpy_ms, fedpack_ms, module, *heavy = done.stdout.split(" ")
    return float(numpy_ms), float(fedpack_ms), module, "".join(heavy).strip()


def profile(name: str, env: dict[str, str], top: int = 15) -> str:
    """``python -X importtime`` of the fedpack part: the slowest modules by self time."""
    code = f"import numpy; import fedpack; fedpack.get_packer({name!r})"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows: list[tuple[int, int, str]] = []
    numpy_done = False
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, module = (part.strip() for part in line[12:].split("|"))
        if not numpy_done:
            numpy_done = module == "numpy"
            continue
        rows.append((int(self_us), int(cumulative_us), module))
    rows.sort(reverse=True)
    lines = [f"{'self ms':>8} {'cumul ms':>9}  module (imported after numpy)"]
    lines += [f"{s / 1e3:8.2f} {c / 1e3:9.2f}  {m}" for s, c, m in rows[:top]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packer", default="clipping_bit", help="an installed packer name")
    parser.add_argument("--plugins", type=int, default=200, help="fake plugin distributions")
    parser.add_argument("--repeats", type=int, default=41, help="fresh processes per scenario")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 repetitions")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--profile", action="store_true", help="print -X importtime's top")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats

    with tempfile.TemporaryDirectory(prefix="fedpack-cold-start-") as tmp:
        make_fake_plugins(Path(tmp), args.plugins)
        scenarios = {
            "installed": child_env(None),
            f"+{args.plugins} plugins": child_env(tmp),
        }
        samples: dict[str, list[tuple[float, float]]] = {key: [] for key in scenarios}
        for env in scenarios.values():  # warm the OS caches and bytecode; checks the packer
            _, _, module, heavy = run_child(args.packer, env)
            if heavy:
                sys.exit(f"import fedpack + get_packer imported {heavy}")
        for _ in range(repeats):
            for key, env in scenarios.items():
                numpy_ms, fedpack_ms, _, _ = run_child(args.packer, env)
                samples[key].append((numpy_ms, fedpack_ms))
        profiles = {key: profile(args.packer, env) for key, env in scenarios.items()}

    results: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packer": args.packer,
        "packer_module": module,
        "repeats": repeats,
        "goal_ms": GOAL_MS,
        "scenarios": {},
    }
    print(
        f"cold start: import numpy; import fedpack; fedpack.get_packer({args.packer!r})  "
        f"(Python {results['python']}, median of {repeats} fresh processes)\n"
    )
    header = (
        f"{'scenario':<16} {'import numpy':>13} {'numpy + fedpack':>16} "
        f"{'fedpack over numpy: median':>27} {'min':>8}"
    )
    print(header)
    print("-" * len(header))
    for key, rows in samples.items():
        numpy_ms = statistics.median(r[0] for r in rows)
        fedpack_ms = statistics.median(r[1] for r in rows)
        total_ms = statistics.median(r[0] + r[1] for r in rows)
        best_ms = min(r[1] for r in rows)
        ratio = fedpack_ms / numpy_ms
        results["scenarios"][key] = {
            "import_numpy_ms": round(numpy_ms, 2),
            "total_ms": round(total_ms, 2),
            "fedpack_over_numpy_ms": round(fedpack_ms, 2),
            "fedpack_over_numpy_ratio": round(ratio, 3),
            "fedpack_over_numpy_min_ms": round(best_ms, 2),
            "samples_ms": [[round(a, 3), round(b, 3)] for a, b in rows],
        }
        print(
            f"{key:<16} {numpy_ms:10.1f} ms {total_ms:13.1f} ms "
            f"{fedpack_ms:8.1f} ms ({ratio:.2f}x numpy) {best_ms:5.1f} ms"
        )
    worst = results["scenarios"][f"+{args.plugins} plugins"]["fedpack_over_numpy_ms"]
    met = worst <= GOAL_MS
    results["goal_met"] = met
    print(
        f"\ngoal: fedpack over numpy <= {GOAL_MS:.0f} ms with {args.plugins} plugins: "
        f"{worst:.1f} ms -> {'met' if met else 'MISSED'}"
    )
    if args.profile or not met:
        for key, text in profiles.items():
            print(f"\n-X importtime, {key}:\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if met or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
