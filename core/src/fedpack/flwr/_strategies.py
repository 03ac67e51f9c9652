"""Message API strategies built on Flower's own ``Strategy`` / ``FedAvg``.

This module imports flwr; :mod:`fedpack.flwr` imports it only when one of its names is used.

- :class:`PackedFedAvg`: ``FedAvg`` whose train instructions carry a packer's extras and whose
  replies' extras are read, bad replies counted as failures (the base of the others);
- :class:`Scaffold`, :class:`PartialExchange`, :class:`AdaptiveConstraint`,
  :class:`ClippingBitFedAvg`: the algorithms the built-in packers exist for;
- :class:`PackedStrategy`: carries any registered packer's extras through any strategy;
- :func:`dp_fedavg_adaptive_clipping`: DP-FedAvg with adaptive clipping, Flower's
  ``DifferentialPrivacyClientSideAdaptiveClipping`` around :class:`ClippingBitFedAvg`.

They are Flower strategies, run by ``strategy.start(grid=..., initial_arrays=...)``. Flower's
wrappers that leave the replies' ArrayRecords alone (the client-side DP ones) wrap them. The
server-side DP wrappers clip every ArrayRecord of a reply, fedpack's extras too, so they go
inside: ``Scaffold(strategy=DifferentialPrivacyServerSideFixedClipping(FedAvg(), ...))`` (and
``PackedStrategy(wrapper, packer)``) takes the extras off the replies first and lets the
wrapper aggregate the weights alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyClientSideAdaptiveClipping, FedAvg, Strategy

from .._errors import PackingError
from .._packer import ParameterPacker
from .._typing import NDArray, NDArrays
from ..checks import describe
from ._records import (
    ARRAYS_KEY,
    EXTRA_KEY,
    from_array_record,
    mirror_scalars,
    pack_records,
    scalar_mirrors,
    to_array_record,
)
from ._replies import PackedReply, ReplyFailure, SplitReplies, error_reply, split_replies

__all__ = [
    "AdaptiveConstraint",
    "ClippingBitFedAvg",
    "PackedFedAvg",
    "PackedStrategy",
    "PartialExchange",
    "Scaffold",
    "attach_extras",
    "dp_fedavg_adaptive_clipping",
]

#: Flower's own logger, so fedpack's lines appear with Flower's.
logger = logging.getLogger("flwr")


def _packer(packer: ParameterPacker[Any] | str) -> ParameterPacker[Any]:
    if isinstance(packer, ParameterPacker):
        return packer
    if isinstance(packer, str):
        from .._api import get_packer

        return get_packer(packer)
    raise TypeError(f"packer: expected a ParameterPacker or a name, found {describe(packer)}")


def attach_extras(
    messages: Iterable[Message],
    packer: ParameterPacker[Any],
    extra: Any,
    *,
    arrays_key: str = ARRAYS_KEY,
    extra_key: str = EXTRA_KEY,
) -> list[Message]:
    """Add ``extra``, packed with each message's weights, to instructions built by a strategy.

    Messages sharing one ``RecordDict`` (as ``FedAvg`` builds them) are packed once. A
    scalar Flower reads too is mirrored into the message's ConfigRecord.
    """
    out = list(messages)
    done: set[int] = set()
    for message in out:
        content = message.content
        if id(content) in done:
            continue
        done.add(id(content))
        record = content.array_records[arrays_key]
        weights = from_array_record(record, what=arrays_key)
        sent, content[extra_key] = pack_records(packer, weights, extra)
        if packer.transforms_weights:  # e.g. quantized: the packed weights travel instead
            content[arrays_key] = to_array_record(sent, list(record.keys()))
        mirror_scalars(content, packer, extra, reply=False)
    return out


def _check_inner(owner: str, strategy: Strategy) -> None:
    """Refuse an inner strategy that is not a Flower strategy or holds a fedpack strategy.

    Walks the ``.strategy`` chain of wrappers (Flower's wrappers keep their inner strategy
    there): a fedpack strategy inside another would wait for extras the outer one took off.
    """
    if not isinstance(strategy, Strategy):
        raise TypeError(
            f"{owner}: strategy: expected a Flower Strategy (e.g. FedAvg, or Flower's DP wrapper "
            f"around it), found {describe(strategy)}"
        )
    chain: list[Strategy] = []
    inner: Any = strategy
    while isinstance(inner, Strategy) and len(chain) < 32:
        chain.append(inner)
        if isinstance(inner, (PackedFedAvg, PackedStrategy)):
            path = " -> ".join(type(s).__name__ for s in chain)
            raise TypeError(
                f"{owner}: strategy: expected a strategy that aggregates the weights alone, found "
                f"the fedpack strategy {type(inner).__name__} inside ({path}); a fedpack "
                "strategy goes outermost, around Flower's strategies and wrappers"
            )
        inner = getattr(inner, "strategy", None)


def _innermost_fedavg(strategy: Strategy) -> FedAvg | None:
    """The first ``FedAvg`` along the ``.strategy`` chain of wrappers (``None``: none)."""
    inner: Any = strategy
    for _ in range(32):
        if isinstance(inner, FedAvg):
            return inner
        inner = getattr(inner, "strategy", None)
        if not isinstance(inner, Strategy):
            return None
    return None


def _weight_of(message: Message, key: str) -> float:
    metrics = next(iter(message.content.metric_records.values()), None)
    value = None if metrics is None else metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PackingError(f"expected a number under {key!r} in the reply's MetricRecord")
    return float(value)


class PackedFedAvg(FedAvg):
    """``FedAvg`` with a packer: extras go out with the weights, and come back with them.

    Each train instruction carries :meth:`train_extra` packed with the global weights (under
    their names). Each reply's extras are read with the packer: a bad reply (missing,
    malformed, from another packer, from an old client) is logged with its node id, left out
    and counted as a failure (in :attr:`failures` and in Flower's own log line), each reply all
    or nothing. The valid replies' weights are averaged by ``FedAvg``, then
    :meth:`aggregate_extras` sees the extras and may change the new global arrays.

    ``strategy=`` hands the weights to another Flower strategy instead of ``FedAvg``, e.g.
    ``Scaffold(strategy=DifferentialPrivacyServerSideFixedClipping(FedAvg(), ...))``: it builds
    the train instructions (its ``configure_train`` is called, so Flower's DP wrappers see the
    current arrays and set their config), this strategy adds the extras; each reply's extras
    are taken off before it aggregates the weights-only replies, then :meth:`aggregate_extras`
    runs on its result. Evaluation is the inner strategy's too. FedAvg's options then belong to
    the inner strategy (``arrayrecord_key`` and ``weighted_by_key`` are read from the first
    ``FedAvg`` along its ``.strategy`` chain). Flower's DP wrappers clip and noise the weights
    only: the extras (e.g. SCAFFOLD's control variate updates) are neither clipped nor noised.

    ``packer`` may be a composition holding the strategy's :attr:`part` (e.g. a
    :class:`Scaffold` with ``packer="scaffold+clipping_bit"``): the other parts whose scalar
    Flower carries (``clipping_bit``) are filled from the train ConfigRecord (where Flower's
    DP wrappers put ``clipping_norm``). Every other keyword goes to ``FedAvg``.
    """

    #: The packer part this strategy reads and writes (``None``: the whole extra).
    part: ClassVar[str | None] = None
    #: The packer used when none is given.
    default_packer: ClassVar[str | None] = None
    #: Why the strategy cannot hand its weights to an inner strategy (``None``: it can).
    no_inner_strategy: ClassVar[str | None] = None

    def __init__(
        self,
        packer: ParameterPacker[Any] | str | None = None,
        *,
        strategy: Strategy | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the strategy; ``kwargs`` go to ``flwr.serverapp.strategy.FedAvg``.

        With ``strategy=`` (see the class docstring) ``kwargs`` must be empty.
        """
        name = type(self).__name__
        if strategy is not None:
            if self.no_inner_strategy is not None:
                raise TypeError(f"{name}: cannot take strategy=: {self.no_inner_strategy}")
            _check_inner(name, strategy)
            if kwargs:
                raise TypeError(
                    f"{name}: with strategy=, FedAvg's options belong to the inner strategy; "
                    f"found {sorted(kwargs)}"
                )
            fedavg = _innermost_fedavg(strategy)
            if fedavg is not None:
                kwargs = {
                    "arrayrecord_key": fedavg.arrayrecord_key,
                    "weighted_by_key": fedavg.weighted_by_key,
                }
        super().__init__(**kwargs)
        #: The strategy that aggregates the weights (``None``: FedAvg's own aggregation).
        self.strategy: Strategy | None = strategy
        chosen = packer if packer is not None else self.default_packer
        if chosen is None:
            raise TypeError(f"{type(self).__name__}: expected packer=")
        #: The packer of instructions and replies.
        self.packer: ParameterPacker[Any] = _packer(chosen)
        self._part_index = self._find_part()
        #: Replies refused per round: ``{server_round: [ReplyFailure, ...]}``.
        self.failures: dict[int, list[ReplyFailure]] = {}
        #: The global arrays sent in the current round.
        self.current_arrays: ArrayRecord | None = None
        #: The number of connected nodes when the current round was configured.
        self.num_nodes = 0

    def _find_part(self) -> int | None:
        parts: Sequence[ParameterPacker[Any]] | None = getattr(self.packer, "parts", None)
        if self.part is None:
            return None
        if parts is None:
            if self.packer.name != self.part:
                raise TypeError(
                    f"{type(self).__name__}: expected the {self.part!r} packer or a composition "
                    f"holding it, found {self.packer.name!r}"
                )
            return None
        names = [p.name for p in parts]
        if self.part not in names:
            raise TypeError(
                f"{type(self).__name__}: expected a composition holding {self.part!r}, found "
                f"{'+'.join(names)}"
            )
        return names.index(self.part)

    # -- hooks -------------------------------------------------------------------------------

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The extra data (this strategy's part of it) sent with the weights to every node."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_extra()")

    def aggregate_extras(
        self, server_round: int, arrays: ArrayRecord | None, replies: list[PackedReply[Any]]
    ) -> ArrayRecord | None:
        """Use the valid replies' extras (this strategy's part); return the new global arrays.

        ``arrays`` is FedAvg's weighted average of the valid replies' weights (``None`` when
        there was none). The default returns it unchanged.
        """
        return arrays

    # -- Flower's Strategy -------------------------------------------------------------------

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """FedAvg's sampling and messages, each carrying the packed :meth:`train_extra`."""
        self.current_arrays = arrays
        if self.strategy is None:
            messages = list(super().configure_train(server_round, arrays, config, grid))
        else:
            messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self.num_nodes = len(list(grid.get_node_ids()))  # after FedAvg waited for the nodes
        if not messages:
            return messages
        extra = self._full_extra(self.train_extra(server_round, arrays, config), config)
        return attach_extras(messages, self.packer, extra, arrays_key=self.arrayrecord_key)

    def _full_extra(self, own: Any, config: ConfigRecord) -> Any:
        parts: Sequence[ParameterPacker[Any]] | None = getattr(self.packer, "parts", None)
        if self._part_index is None or parts is None:
            return own
        values: list[Any] = []
        for index, part in enumerate(parts):
            if index == self._part_index:
                values.append(own)
                continue
            keys = part.flower_scalar_keys
            if keys is None or keys[1] not in config:
                raise PackingError(
                    f"{type(self).__name__}: cannot fill part {part.name!r} of "
                    f"{self.packer.name if not parts else '+'.join(p.name for p in parts)}: "
                    f"expected its value under {keys[1] if keys else '?'!r} in the train "
                    "ConfigRecord (set by Flower's DP wrapper), found the keys "
                    f"{sorted(config.keys())}"
                )
            values.append(config[keys[1]])
        return tuple(values)

    def split(self, server_round: int, replies: Iterable[Message]) -> SplitReplies[Any]:
        """:func:`fedpack.flwr.split_replies` with this strategy's packer; records failures."""
        result = split_replies(replies, self.packer, arrays_key=self.arrayrecord_key)
        self.failures[server_round] = result.failures
        return result

    def check_weights(self, server_round: int, result: SplitReplies[Any]) -> SplitReplies[Any]:
        """Turn valid replies whose weights do not match the global model into failures.

        FedAvg averages arrays by name and refuses (raising) replies whose names differ; a
        reply with other names or shapes than the arrays sent is left out and counted instead.
        """
        current = self.current_arrays
        if current is None:
            return result
        expected = [(name, tuple(array.shape)) for name, array in current.items()]
        out: SplitReplies[Any] = SplitReplies(failures=result.failures)
        index = {id(r.message): r for r in result.accepted}
        for position, message in enumerate(result.replies):
            packed = index.get(id(message))
            if packed is not None:
                record = message.content.array_records.get(self.arrayrecord_key)
                found = [] if record is None else [(n, tuple(a.shape)) for n, a in record.items()]
                if found != expected:
                    reason = (
                        f"fedpack: reply {position} from node {packed.node_id}: expected the "
                        f"weights {expected}, found {found}"
                    )
                    logger.warning("%s (left out of aggregation)", reason)
                    result.failures.append(ReplyFailure(position, packed.node_id, reason))
                    out.replies.append(error_reply(message, reason))
                    continue
                out.accepted.append(packed)
            out.replies.append(message)
        return out

    def own_extra(self, extra: Any) -> Any:
        """The part of a reply's extra data that belongs to this strategy."""
        return extra if self._part_index is None else extra[self._part_index]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Refuse bad replies (as failures), average (FedAvg or ``strategy=``), then extras.

        The weights-only replies (and an error reply for each refused one) go to FedAvg's
        aggregation or the inner strategy's; :meth:`aggregate_extras` gets its result.
        """
        result = self.check_weights(server_round, self.split(server_round, replies))
        if self.strategy is None:
            arrays, metrics = super().aggregate_train(server_round, result.replies)
        else:
            arrays, metrics = self.strategy.aggregate_train(server_round, result.replies)
        own = [PackedReply(r.message, self.own_extra(r.extra)) for r in result.accepted]
        return self.aggregate_extras(server_round, arrays, own), metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """FedAvg's, or the inner strategy's with ``strategy=``."""
        if self.strategy is None:
            return super().configure_evaluate(server_round, arrays, config, grid)
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """FedAvg's, or the inner strategy's with ``strategy=``."""
        if self.strategy is None:
            return super().aggregate_evaluate(server_round, replies)
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        """The packer's name, then FedAvg's summary or the inner strategy's."""
        logger.info("\t├──> fedpack packer: %r", self.packer)
        if self.strategy is None:
            super().summary()
        else:
            self.strategy.summary()


def _float_like(x: NDArray) -> np.dtype[Any]:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


class Scaffold(PackedFedAvg):
    """SCAFFOLD (Karimireddy et al., 2020): FedAvg plus server control variates.

    Each round sends the global weights ``x`` and the server control variates ``c`` (one per
    weight, zeros at first, under the weights' names). With the valid replies' weights ``y_i``
    (FedAvg's average, weighted by ``"num-examples"``) and control variate updates
    ``delta c_i``: ``x <- x + server_learning_rate * (avg(y_i) - x)`` and
    ``c <- c + |S| / N * mean(delta c_i)``, ``N`` the connected nodes. The client side is
    :class:`fedpack.flwr.ScaffoldClient`.
    """

    part: ClassVar[str | None] = "scaffold"
    default_packer: ClassVar[str | None] = "scaffold"

    def __init__(
        self,
        *,
        server_learning_rate: float = 1.0,
        packer: ParameterPacker[Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        """``server_learning_rate`` is SCAFFOLD's global step size; ``kwargs`` go to FedAvg."""
        super().__init__(packer, **kwargs)
        if not math.isfinite(server_learning_rate) or server_learning_rate <= 0:
            raise ValueError(
                f"server_learning_rate: expected a positive number, found {server_learning_rate!r}"
            )
        self.server_learning_rate = float(server_learning_rate)
        #: The server control variates ``c`` by weight name (set on the first round).
        self.control_variates: dict[str, NDArray] = {}

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The server control variates, in the order of ``arrays``."""
        weights = from_array_record(arrays, what="arrays")
        names = list(arrays.keys())
        if list(self.control_variates) != names:
            self.control_variates = {
                name: np.zeros(w.shape, dtype=_float_like(w))
                for name, w in zip(names, weights, strict=True)
            }
        return list(self.control_variates.values())

    def aggregate_extras(
        self, server_round: int, arrays: ArrayRecord | None, replies: list[PackedReply[Any]]
    ) -> ArrayRecord | None:
        """Step the weights with the server learning rate; update ``c``."""
        if arrays is None or not replies or self.current_arrays is None:
            return arrays
        names = list(self.current_arrays.keys())
        x = from_array_record(self.current_arrays, what="arrays")
        y = from_array_record(arrays, what="aggregated arrays")
        lr = self.server_learning_rate
        new = [
            (xi + lr * (yi.astype(_float_like(xi)) - xi)).astype(xi.dtype)
            for xi, yi in zip(x, y, strict=True)
        ]
        fraction = len(replies) / max(self.num_nodes, len(replies))
        for index, name in enumerate(names):
            deltas = [np.asarray(r.extra[index]) for r in replies]
            c = self.control_variates[name]
            step = fraction * np.mean(deltas, axis=0)
            self.control_variates[name] = np.asarray(c + step, dtype=c.dtype)
        return ArrayRecord({n: Array(np.asarray(a)) for n, a in zip(names, new, strict=True)})


class PartialExchange(PackedFedAvg):
    """Partial weight exchange by layer names (``layer_names`` packer).

    The server sends the whole model with its layer names; each client replies with the
    layers it chose and their names. Every layer is averaged over the clients that sent it,
    weighted by ``"num-examples"`` as FedAvg weights; a layer nobody sent keeps its value. A
    reply naming a layer the model does not have, or shaped differently, is a failure.
    """

    part: ClassVar[str | None] = "layer_names"
    default_packer: ClassVar[str | None] = "layer_names"
    no_inner_strategy: ClassVar[str | None] = (
        "it averages each layer over the clients that sent it, which a strategy averaging whole "
        "models cannot do (Flower's server-side DP wrappers clip each reply against the whole "
        "model, so they cannot wrap a partial one either)"
    )

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The names of all layers (the ``"arrays"`` record's keys)."""
        return list(arrays.keys())

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average each layer over the replies that carry it (see the class docstring)."""
        result = self.split(server_round, replies)
        current = self.current_arrays
        if current is None:
            raise RuntimeError("PartialExchange.aggregate_train before configure_train")
        shapes = {name: tuple(a.shape) for name, a in current.items()}
        accepted: list[tuple[Message, list[str], NDArrays, float]] = []
        errors = [m for m in result.replies if m.has_error()]
        for index, packed in enumerate(result.accepted):
            message = packed.message
            names = list(self.own_extra(packed.extra))
            try:
                record = message.content.array_records[self.arrayrecord_key]
                arrays = from_array_record(record, what=self.arrayrecord_key)
                unknown = [
                    n for n, a in zip(names, arrays, strict=True) if shapes.get(n) != a.shape
                ]
                if unknown:
                    raise PackingError(
                        f"layers not in the global model or shaped differently: {unknown}"
                    )
                weight = _weight_of(message, self.weighted_by_key)
            except PackingError as exc:
                reason = f"fedpack: bad reply {index} from node {packed.node_id}: {exc}"
                logger.warning("%s (left out of aggregation)", reason)
                self.failures[server_round].append(ReplyFailure(index, packed.node_id, reason))
                errors.append(error_reply(message, reason))
                continue
            accepted.append((message, names, arrays, weight))
        logger.info(
            "aggregate_train: Received %s results and %s failures", len(accepted), len(errors)
        )
        for message in errors:
            logger.info(
                "\t> Received error in reply from node %d: %s",
                message.metadata.src_node_id,
                message.error.reason,
            )
        if not accepted:
            return None, None
        sums: dict[str, NDArray] = {}
        totals: dict[str, float] = {}
        for _, names, arrays, weight in accepted:
            for name, array in zip(names, arrays, strict=True):
                term = array.astype(np.float64) * weight
                sums[name] = sums[name] + term if name in sums else term
                totals[name] = totals.get(name, 0.0) + weight
        out: dict[str, Array] = {}
        for name, old in current.items():
            if name in sums and totals[name] > 0:
                value = (sums[name] / totals[name]).astype(old.numpy().dtype)
                out[name] = Array(np.asarray(value))
            else:
                out[name] = old
        contents: list[RecordDict] = [m.content for m, _, _, _ in accepted]
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        return ArrayRecord(out), metrics


class AdaptiveConstraint(PackedFedAvg):
    """FedProx / Ditto with an adaptive constraint weight ``mu`` (``adaptive_constraint``).

    The server sends ``mu`` with the weights; each client replies with its training loss as the
    extra. With ``adapt=True`` the loss averaged over the valid replies (weighted by
    ``"num-examples"``) drives ``mu`` as FL4Health's ``FedAvgWithAdaptiveConstraint`` does: a
    loss above the previous round's raises ``mu`` by ``weight_delta`` (and resets the
    patience counter); a loss that did not rise for ``patience`` rounds in a row lowers it by
    ``weight_delta``, never below 0.
    """

    part: ClassVar[str | None] = "adaptive_constraint"
    default_packer: ClassVar[str | None] = "adaptive_constraint"

    def __init__(
        self,
        *,
        initial_constraint_weight: float = 1.0,
        adapt: bool = False,
        weight_delta: float = 0.1,
        patience: int = 5,
        packer: ParameterPacker[Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        """Defaults are FL4Health's; ``kwargs`` go to FedAvg."""
        super().__init__(packer, **kwargs)
        if initial_constraint_weight < 0 or weight_delta < 0 or patience < 1:
            raise ValueError(
                "expected initial_constraint_weight >= 0, weight_delta >= 0 and patience >= 1, "
                f"found {initial_constraint_weight}, {weight_delta} and {patience}"
            )
        #: The constraint weight ``mu`` sent to the clients.
        self.constraint_weight = float(initial_constraint_weight)
        self.adapt = adapt
        self.weight_delta = float(weight_delta)
        self.patience = patience
        #: The previous round's aggregated training loss.
        self.previous_loss = math.inf
        self._counter = 0
        #: The aggregated training loss per round.
        self.losses: dict[int, float] = {}

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The constraint weight ``mu``."""
        return self.constraint_weight

    def aggregate_extras(
        self, server_round: int, arrays: ArrayRecord | None, replies: list[PackedReply[Any]]
    ) -> ArrayRecord | None:
        """Average the clients' losses and update ``mu`` (see the class docstring)."""
        if not replies:
            return arrays
        weights = [_weight_of(r.message, self.weighted_by_key) for r in replies]
        total = sum(weights)
        losses = [float(r.extra) for r in replies]
        loss = (
            sum(w * v for w, v in zip(weights, losses, strict=True)) / total
            if total > 0
            else sum(losses) / len(losses)
        )
        self.losses[server_round] = loss
        self.update_constraint_weight(loss)
        return arrays

    def update_constraint_weight(self, loss: float) -> None:
        """One step of FL4Health's adaptive rule for the aggregated ``loss``."""
        if not self.adapt:
            return
        if loss <= self.previous_loss:
            self._counter += 1
            if self._counter == self.patience:
                self.constraint_weight = max(0.0, self.constraint_weight - self.weight_delta)
                self._counter = 0
        else:
            self.constraint_weight += self.weight_delta
            self._counter = 0
        self.previous_loss = loss


class ClippingBitFedAvg(PackedFedAvg):
    """FedAvg exchanging the clipping bound and clipping bits (``clipping_bit``).

    Meant to be wrapped by Flower's ``DifferentialPrivacyClientSideAdaptiveClipping`` (see
    :func:`dp_fedavg_adaptive_clipping`): the wrapper puts the current ``clipping_norm`` into
    the train config, this strategy packs it as the instruction's extra; each client packs its
    clipping bit, which fedpack mirrors as ``norm_bit`` where the wrapper reads it to adapt the
    bound (Flower's ``adaptiveclipping_mod`` on the client writes it too). Without the wrapper,
    ``clipping_norm`` is sent. The fraction of clients that clipped is kept per round in
    :attr:`clipped_fraction`.
    """

    part: ClassVar[str | None] = "clipping_bit"
    default_packer: ClassVar[str | None] = "clipping_bit"

    def __init__(
        self,
        *,
        clipping_norm: float = 0.1,
        packer: ParameterPacker[Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        """``clipping_norm`` is sent when no DP wrapper sets one; ``kwargs`` go to FedAvg."""
        super().__init__(packer, **kwargs)
        self.clipping_norm = float(clipping_norm)
        #: The fraction of valid replies whose clipping bit was set, per round.
        self.clipped_fraction: dict[int, float] = {}

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The clipping bound: the DP wrapper's ``clipping_norm`` if set, else our own."""
        value = config.get("clipping_norm", self.clipping_norm)
        return float(value)  # type: ignore[arg-type]

    def aggregate_extras(
        self, server_round: int, arrays: ArrayRecord | None, replies: list[PackedReply[Any]]
    ) -> ArrayRecord | None:
        """Record the fraction of clients that clipped."""
        if replies:
            self.clipped_fraction[server_round] = sum(float(r.extra) for r in replies) / len(
                replies
            )
        return arrays


class PackedStrategy(Strategy):
    """Carry any registered packer's extras through any Flower strategy.

    ``PackedStrategy(FedAvg(), "echo")``: the inner strategy builds the instructions and
    aggregates the weights; this wrapper adds :meth:`train_extra` (packed with each
    instruction's weights) to the train instructions, takes the extras off the replies before
    the inner strategy sees them (a bad reply becomes a counted failure, see
    :func:`fedpack.flwr.split_replies`) and hands them to :meth:`aggregate_extras`. Override
    the two hooks, or pass ``train_extra=`` as a function. Put it outside Flower's
    server-side DP wrappers, which clip every ArrayRecord of a reply:
    ``PackedStrategy(DifferentialPrivacyServerSideFixedClipping(FedAvg(), ...), packer)``.
    """

    def __init__(
        self,
        strategy: Strategy,
        packer: ParameterPacker[Any] | str,
        *,
        train_extra: Callable[[int, ArrayRecord, ConfigRecord], Any] | None = None,
        arrays_key: str = ARRAYS_KEY,
    ) -> None:
        """Wrap ``strategy``; ``packer`` is a packer or a registered name (compositions too)."""
        super().__init__()
        _check_inner(type(self).__name__, strategy)
        self.strategy = strategy
        self.packer: ParameterPacker[Any] = _packer(packer)
        self.arrays_key = arrays_key
        self._train_extra = train_extra
        #: Replies refused per round.
        self.failures: dict[int, list[ReplyFailure]] = {}
        #: The valid replies' extras per round (what the default :meth:`aggregate_extras` keeps).
        self.extras: dict[int, list[PackedReply[Any]]] = {}

    def train_extra(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord) -> Any:
        """The extra data sent with the weights; ``None`` sends plain instructions."""
        if self._train_extra is None:
            return None
        return self._train_extra(server_round, arrays, config)

    def aggregate_extras(
        self, server_round: int, arrays: ArrayRecord | None, replies: list[PackedReply[Any]]
    ) -> ArrayRecord | None:
        """Use the valid replies' extras; return the new global arrays (default: keep them)."""
        self.extras[server_round] = replies
        return arrays

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The inner strategy's instructions, with the packed :meth:`train_extra` added."""
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        extra = self.train_extra(server_round, arrays, config)
        if extra is None or not messages:
            return messages
        return attach_extras(messages, self.packer, extra, arrays_key=self.arrays_key)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Take the extras off (bad replies become failures), aggregate with the inner one."""
        result = split_replies(replies, self.packer, arrays_key=self.arrays_key)
        self.failures[server_round] = result.failures
        arrays, metrics = self.strategy.aggregate_train(server_round, result.replies)
        return self.aggregate_extras(server_round, arrays, result.accepted), metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The inner strategy's."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """The inner strategy's."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        """The inner strategy's summary, after the packer's name."""
        logger.info("\t├──> fedpack packer: %r", self.packer)
        self.strategy.summary()


def dp_fedavg_adaptive_clipping(
    strategy: Strategy | None = None,
    *,
    noise_multiplier: float,
    num_sampled_clients: int,
    initial_clipping_norm: float = 0.1,
    target_clipped_quantile: float = 0.5,
    clip_norm_lr: float = 0.2,
    clipped_count_stddev: float | None = None,
) -> DifferentialPrivacyClientSideAdaptiveClipping:
    """DP-FedAvg with adaptive clipping through the clipping bit.

    Flower's ``DifferentialPrivacyClientSideAdaptiveClipping`` around ``strategy`` (default
    :class:`ClippingBitFedAvg`; a ``Scaffold(packer="scaffold+clipping_bit")`` works too).
    Clients clip (``adaptiveclipping_mod`` after :func:`fedpack.flwr.extras_mod`) and reply
    with their clipping bit; the wrapper adapts the bound from ``norm_bit`` and adds noise.
    """
    inner = strategy if strategy is not None else ClippingBitFedAvg()
    if isinstance(inner, PackedFedAvg) and not scalar_mirrors(inner.packer, _probe(inner)):
        raise TypeError(
            f"dp_fedavg_adaptive_clipping: expected a strategy whose packer carries a clipping "
            f"bit (clipping_bit or a composition holding it), found {inner.packer.name!r}"
        )
    return DifferentialPrivacyClientSideAdaptiveClipping(
        inner,
        noise_multiplier=noise_multiplier,
        num_sampled_clients=num_sampled_clients,
        initial_clipping_norm=initial_clipping_norm,
        target_clipped_quantile=target_clipped_quantile,
        clip_norm_lr=clip_norm_lr,
        clipped_count_stddev=clipped_count_stddev,
    )


def _probe(strategy: PackedFedAvg) -> Any:
    """A stand-in extra for checking which scalars a strategy's packer mirrors."""
    parts: Sequence[ParameterPacker[Any]] | None = getattr(strategy.packer, "parts", None)
    if parts is None:
        return 0.0
    return tuple(0.0 if p.flower_scalar_keys else None for p in parts)
