"""The app's own pieces, without Flower processes: config, compression seam, data, helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import tomllib
import torch
from fedpack_app import task
from fedpack_app.compression import CODECS, NoCompression, get_codec
from fedpack_app.config import ALGORITHMS, AppConfig

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_run_config_of_pyproject_is_the_app_config() -> None:
    run_config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["flwr"]["app"][
        "config"
    ]
    keys = {f.name.replace("_", "-") for f in dataclasses.fields(AppConfig)}
    assert set(run_config) == keys
    assert AppConfig.from_run_config(run_config) == AppConfig()
    assert run_config["algorithm"] in ALGORITHMS


def test_an_integer_is_accepted_for_a_float() -> None:
    assert AppConfig.from_run_config({"learning-rate": 1}).learning_rate == 1.0


def test_a_wrongly_typed_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"run config 'local-steps': expected int, got '50'"):
        AppConfig.from_run_config({"local-steps": "50"})
    with pytest.raises(ValueError, match=r"'learning-rate': expected float, got True"):
        AppConfig.from_run_config({"learning-rate": True})


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected one of fedavg, scaffold, .*got 'fedsgd'"):
        AppConfig.from_run_config({"algorithm": "fedsgd"})


def test_no_compression_is_the_default_codec_and_leaves_replies_alone() -> None:
    assert set(CODECS) == {"none", "q8", "q4", "topk", "topk-q8"}
    codec = get_codec(AppConfig().compression)
    assert isinstance(codec, NoCompression)
    replies: list[object] = [object(), object()]
    assert codec.decode_replies(replies, None) == replies  # type: ignore[arg-type]


def test_an_unknown_codec_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"run config 'compression': expected one of none, q4, q8, topk, topk-q8, got 'zip'",
    ):
        get_codec("zip")


def test_partitions_are_deterministic_and_skewed() -> None:
    a = task.load_partition(3, 8, data_seed=1)
    b = task.load_partition(3, 8, data_seed=1)
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.y, b.y)
    other = task.load_partition(4, 8, data_seed=1)
    assert not torch.equal(a.x, other.x)
    # label skew: with alpha 0.1 one class dominates each client
    counts = torch.bincount(a.y, minlength=task.NUM_CLASSES)
    assert counts.max() > len(a.y) / 3
    test = task.load_test_set(8, data_seed=1)
    assert torch.equal(
        torch.bincount(test.y), torch.full((task.NUM_CLASSES,), len(test.y) // task.NUM_CLASSES)
    )


def test_a_partition_id_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"partition-id must be in \[0, 2\), got 2"):
        task.load_partition(2, 2)


def test_most_changed_keeps_the_layers_that_moved_most() -> None:
    old = {"a": torch.ones(3), "b": torch.ones(3), "c": torch.ones(2), "d": torch.ones(2)}
    new = {"a": torch.ones(3) * 2, "b": torch.ones(3), "c": torch.ones(2) * 5, "d": torch.ones(2)}
    assert list(task.most_changed(new, old, 0.5)) == ["a", "c"]
    assert task.update_norm(new, old) == pytest.approx((3 * 1 + 2 * 16) ** 0.5)


def test_training_lowers_the_loss_and_the_hook_runs() -> None:
    data = task.load_partition(0, 4)
    model = task.new_model(0)
    calls: list[int] = []
    before, _ = task.evaluate(model, data)
    task.train(model, data, steps=20, lr=0.05, after_backward=lambda m: calls.append(1))
    after, _ = task.evaluate(model, data)
    assert after < before
    assert len(calls) == 20
