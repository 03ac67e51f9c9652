"""The ClientApp: trains on this node's partition with the algorithm of the run config.

Each algorithm's client side is a few lines: fedpack's ``receive`` gives the global weights
(as a ``state_dict``) and the algorithm's extra, ``reply`` sends the trained weights and the
client's extra back; ``ScaffoldClient`` keeps SCAFFOLD's control variate ``c_i`` in
``context.state``. FedAvg is written with Flower alone, for comparison.
"""

from __future__ import annotations

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod
from flwr.clientapp.typing import ClientAppCallable

from fedpack.flwr import EXTRA_KEY, ScaffoldClient, extras_mod, receive, reply, to_array

from . import task
from .compression import UPDATE_KEY, get_codec
from .config import AppConfig


def dp_mods(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """For ``dp-adaptive``: fedpack's ``extras_mod``, then Flower's ``adaptiveclipping_mod``."""
    if context.run_config.get("algorithm") != "dp-adaptive":
        return call_next(msg, context)
    return extras_mod(msg, context, lambda m, c: adaptiveclipping_mod(m, c, call_next))


app = ClientApp(mods=[dp_mods])


def fedavg(msg: Message, model: task.Net, fit: task.Fit) -> Message:
    """FedAvg with Flower alone."""
    model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
    loss = fit(model)
    metrics = MetricRecord({"train_loss": loss, "num-examples": fit.num_examples})
    content = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics})
    return Message(content, reply_to=msg)


def scaffold(msg: Message, context: Context, model: task.Net, fit: task.Fit) -> Message:
    """SCAFFOLD: gradients corrected by ``c - c_i``; replies ``y_i`` and ``delta c_i``."""
    client = ScaffoldClient(msg, context)  # x and c from the message, c_i from context.state
    model.load_state_dict(client.state_dict())
    loss = fit(model, after_backward=client.correct_gradients)
    return client.reply(
        model.state_dict(),
        local_steps=fit.steps,
        learning_rate=fit.lr,
        num_examples=fit.num_examples,
        metrics={"train_loss": loss},
    )


def fedprox_adaptive(msg: Message, model: task.Net, fit: task.Fit) -> Message:
    """FedProx with the server's adaptive ``mu``; replies the training loss that drives it."""
    weights, mu = receive(msg, state_dict=True)
    model.load_state_dict(weights)
    loss = fit(model, proximal_mu=mu)
    return reply(msg, model.state_dict(), loss, num_examples=fit.num_examples)


def layer_names(msg: Message, model: task.Net, fit: task.Fit, fraction: float) -> Message:
    """Partial exchange: send the layers that changed most, with their names."""
    weights, _ = receive(msg, state_dict=True)
    model.load_state_dict(weights)
    fit(model)
    sent = task.most_changed(model.state_dict(), weights, fraction)
    return reply(msg, sent, list(sent), num_examples=fit.num_examples)


def dp_adaptive(msg: Message, model: task.Net, fit: task.Fit) -> Message:
    """DP-FedAvg with adaptive clipping: reply whether the update exceeded the bound."""
    weights, clipping_norm = receive(msg, state_dict=True)
    model.load_state_dict(weights)
    fit(model)
    bit = float(task.update_norm(model.state_dict(), weights) > clipping_norm)
    return reply(msg, model.state_dict(), bit, num_examples=fit.num_examples)


def corrupt(reply_msg: Message) -> None:
    """Break the frame of the reply's fedpack payload (the mixed-fleet tests use this)."""
    if EXTRA_KEY in reply_msg.content.array_records:
        extras = reply_msg.content.array_records[EXTRA_KEY]
        frame = extras["frame"].numpy().copy()
        frame[-3:] = 0  # the frame's JSON no longer parses
        extras["frame"] = to_array(frame)
    if UPDATE_KEY in reply_msg.content.array_records:  # a compressed update: the same
        update = reply_msg.content.array_records[UPDATE_KEY]
        last = list(update.keys())[-1]
        frame = update[last].numpy().copy()
        frame[-3:] = 0
        update[last] = to_array(frame)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train on this node's partition; reply with the algorithm's payload."""
    config = AppConfig.from_run_config(context.run_config)
    partition_id = int(context.node_config["partition-id"])
    data = task.load_partition(
        partition_id,
        int(context.node_config["num-partitions"]),
        data_seed=config.data_seed,
        alpha=config.dirichlet_alpha,
        samples=config.samples_per_client,
    )
    server_round = int(msg.content["config"].get("server-round", 0))  # type: ignore[arg-type]
    seed = server_round * 1000 + partition_id  # other mini-batches every round and client
    fit = task.Fit(data, config.local_steps, config.learning_rate, config.batch_size, seed)
    model = task.new_model(config.model_seed, config.hidden_units)
    global_arrays = msg.content.array_records["arrays"]
    if config.algorithm == "scaffold":
        out = scaffold(msg, context, model, fit)
    elif config.algorithm == "fedprox-adaptive":
        out = fedprox_adaptive(msg, model, fit)
    elif config.algorithm == "layer-names":
        out = layer_names(msg, model, fit, config.layer_fraction)
    elif config.algorithm == "dp-adaptive":
        out = dp_adaptive(msg, model, fit)
    else:
        out = fedavg(msg, model, fit)
    # the compression seam (see compression.py): "none" leaves the reply as it is
    get_codec(config.compression, config.topk_density).encode_reply(out, global_arrays, context)
    if partition_id == config.corrupt_partition:
        corrupt(out)
    return out
