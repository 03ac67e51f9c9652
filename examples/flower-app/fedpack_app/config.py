"""The run configuration (``[tool.flwr.app.config]`` in pyproject.toml), typed and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

ALGORITHMS = ("fedavg", "scaffold", "fedprox-adaptive", "layer-names", "dp-adaptive")


@dataclass(frozen=True)
class AppConfig:
    """Every run-config key of the app; the attribute is the key with ``_`` for ``-``."""

    algorithm: str = "fedavg"
    num_server_rounds: int = 5
    local_steps: int = 50
    learning_rate: float = 0.05
    batch_size: int = 32
    dirichlet_alpha: float = 0.1
    samples_per_client: int = 500
    data_seed: int = 0
    model_seed: int = 0
    hidden_units: int = 64
    fraction_train: float = 1.0
    min_nodes: int = 2
    server_learning_rate: float = 1.0
    proximal_mu: float = 0.1
    layer_fraction: float = 0.5
    noise_multiplier: float = 0.01
    clipping_norm: float = 1.0
    clipped_quantile: float = 0.5
    compression: str = "none"
    topk_density: float = 0.02
    corrupt_partition: int = -1
    result_file: str = ""

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, object]) -> AppConfig:
        """Read the run config; unknown algorithms and wrongly typed values raise ValueError."""
        values: dict[str, object] = {}
        for f in fields(cls):
            key = f.name.replace("_", "-")
            if key not in run_config:
                continue
            value = run_config[key]
            default = getattr(cls, f.name)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            if type(value) is not type(default):
                raise ValueError(
                    f"run config {key!r}: expected {type(default).__name__}, got {value!r}"
                )
            values[f.name] = value
        config = cls(**values)  # type: ignore[arg-type]
        if config.algorithm not in ALGORITHMS:
            raise ValueError(
                f"run config 'algorithm': expected one of {', '.join(ALGORITHMS)}, "
                f"got {config.algorithm!r}"
            )
        return config
