"""What stays out of a fresh interpreter: importing (and using) a light part pulls in no heavy one.

Each case runs in its own child process, so the modules this test process already holds do not
count. A case whose project is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

#: case id -> (project it needs, code run in the child, top-level modules it must not import)
CASES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "fedpack.testing without pytest": ("fedpack", "import fedpack.testing", ("pytest",)),
    "fedpack.flwr without flwr or torch": ("fedpack", "import fedpack.flwr", ("flwr", "torch")),
    "sparse_coo helpers without torch": (
        "fedpack_sparse_coo",
        """
        import numpy as np, fedpack_sparse_coo as s
        s.sparsify({"a": np.ones(2)})
        s.SparseCooPacker.extract_coo_info_from_dense(np.ones(2))
        """,
        ("torch",),
    ),
    "compact sparse_coo without numba": (
        "fedpack_sparse_coo",
        """
        import fedpack, fedpack_sparse_coo
        fedpack.get_packer("sparse_coo", encoding="compact")
        """,
        ("numba",),
    ),
    "fl4health drop-in without torch, flwr or scipy": (
        "fedpack_fl4health",
        """
        import fedpack_fl4health as m
        m.SparseCooParameterPacker().pack_parameters([], ([], [], []))
        """,
        ("torch", "flwr", "scipy"),
    ),
}

_REPORT = """
import json, sys
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))))
"""


@pytest.mark.parametrize("case", list(CASES))
def test_stays_light(case: str) -> None:
    needs, code, heavy = CASES[case]
    if importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    script = textwrap.dedent(code) + _REPORT
    out = subprocess.run(
        [sys.executable, "-c", script, *heavy],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_the_report_sees_a_heavy_import() -> None:
    # the check itself: a submodule import counts as its top-level package
    script = "import json.decoder" + _REPORT
    out = subprocess.run(
        [sys.executable, "-c", script, "json", "nothing_here"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == ["json"]
