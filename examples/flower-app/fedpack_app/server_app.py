"""The ServerApp: one strategy per algorithm, centralised evaluation, bytes on the wire.

Every round it prints the global model's accuracy on the held-out test set and the bytes of
the ArrayRecords sent to and received from the clients (the ``Array`` payloads as they go on
the wire), and at the end one summary line. With ``result-file`` set it also writes the
run's numbers as JSON (the tests read it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp

from fedpack.flwr import EXTRA_KEY

from . import task
from .compression import UpdateCodec, get_codec
from .config import AppConfig
from .strategies import build_strategy, refused_replies

app = ServerApp()


def carries_fedpack(message: Message) -> bool:
    """Whether a message holds a fedpack extras record."""
    return not message.has_error() and EXTRA_KEY in message.content.array_records


def record_bytes(message: Message) -> int:
    """Bytes of every ArrayRecord in a message (the serialized ``Array`` payloads)."""
    if message.has_error():
        return 0
    return sum(
        len(array.data)
        for record in message.content.array_records.values()
        for array in record.values()
    )


@dataclass
class RoundLog:
    """What one round did."""

    round: int
    accuracy: float
    loss: float
    bytes_down: int = 0
    bytes_up: int = 0
    replies: int = 0
    failures: int = 0
    refused: int = 0
    fedpack_down: int = 0
    fedpack_up: int = 0


@dataclass
class RunLog:
    """The whole run, as written to ``result-file``."""

    algorithm: str
    rounds: list[RoundLog] = field(default_factory=list)
    seconds: float = 0.0


class CountingGrid:
    """A Grid that counts the bytes and replies of every ``send_and_receive``.

    It also runs the compression codec's server side on the replies before the strategy sees
    them. Everything else is delegated to Flower's Grid.
    """

    def __init__(self, grid: Grid, codec: UpdateCodec) -> None:
        self._grid = grid
        self._codec = codec
        self.global_arrays = ArrayRecord()
        self.counts = RoundLog(0, 0.0, 0.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Send, count, receive, count, decode."""
        messages = list(messages)
        counts = self.counts
        counts.bytes_down += sum(record_bytes(m) for m in messages)
        counts.fedpack_down += sum(carries_fedpack(m) for m in messages)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        counts.bytes_up += sum(record_bytes(r) for r in replies)
        counts.fedpack_up += sum(carries_fedpack(r) for r in replies)
        decoded = self._codec.decode_replies(replies, self.global_arrays)
        counts.replies += len(decoded)
        # a reply the codec could not decode is an error reply now: counted as a failure
        counts.failures += sum(r.has_error() for r in decoded)
        return decoded

    def take(self, server_round: int, accuracy: float, loss: float) -> RoundLog:
        """The counts since the last call as the log of ``server_round``; counting restarts."""
        counts, self.counts = self.counts, RoundLog(0, 0.0, 0.0)
        counts.round, counts.accuracy, counts.loss = server_round, accuracy, loss
        return counts


def wait_for_nodes(grid: Grid, min_nodes: int, timeout: float = 120.0) -> int:
    """The number of connected nodes, once there are ``min_nodes`` (at most ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        count = len(list(grid.get_node_ids()))
        if count >= min_nodes or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run ``num-server-rounds`` rounds of the configured algorithm."""
    config = AppConfig.from_run_config(context.run_config)
    num_nodes = wait_for_nodes(grid, config.min_nodes)
    # the test set holds samples shifted like every client's (one partition per node)
    test_set = task.load_test_set(num_nodes, data_seed=config.data_seed)
    model = task.new_model(config.model_seed, config.hidden_units)
    initial_arrays = ArrayRecord(model.state_dict())
    strategy = build_strategy(config, num_nodes)
    counting = CountingGrid(grid, get_codec(config.compression, config.topk_density))
    run = RunLog(algorithm=config.algorithm)
    started = time.monotonic()
    print(
        f"fedpack app: {config.algorithm}, {num_nodes} nodes, {config.num_server_rounds} rounds, "
        f"{config.local_steps} local steps, Dirichlet alpha {config.dirichlet_alpha}",
        flush=True,
    )
    print("round  accuracy    loss   KiB down   KiB up  replies  failures", flush=True)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        counting.global_arrays = arrays
        model.load_state_dict(arrays.to_torch_state_dict())
        loss, accuracy = task.evaluate(model, test_set)
        entry = counting.take(server_round, accuracy, loss)
        # replies whose fedpack payload was bad: the strategy counted them as failures
        entry.refused = refused_replies(strategy, server_round)
        entry.failures += entry.refused
        run.rounds.append(entry)
        print(
            f"{server_round:5d}  {accuracy:8.3f}  {loss:6.3f}  {entry.bytes_down / 1024:9.1f}  "
            f"{entry.bytes_up / 1024:7.1f}  {entry.replies:7d}  {entry.failures:8d}",
            flush=True,
        )
        return MetricRecord({"accuracy": accuracy, "loss": loss})

    strategy.start(
        grid=counting,  # type: ignore[arg-type]
        initial_arrays=initial_arrays,
        num_rounds=config.num_server_rounds,
        evaluate_fn=evaluate,
        timeout=600,
    )
    run.seconds = time.monotonic() - started
    first, last = run.rounds[0], run.rounds[-1]
    total = sum(r.bytes_down + r.bytes_up for r in run.rounds)
    print(
        f"fedpack app summary: {config.algorithm} accuracy {first.accuracy:.3f} -> "
        f"{last.accuracy:.3f} in {len(run.rounds) - 1} rounds, {total / 1024:.1f} KiB on the wire, "
        f"{sum(r.failures for r in run.rounds)} failed replies, {run.seconds:.1f} s",
        flush=True,
    )
    if config.result_file:
        Path(config.result_file).write_text(json.dumps(asdict(run), indent=2), encoding="utf-8")
