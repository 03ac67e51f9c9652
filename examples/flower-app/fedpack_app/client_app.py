"""The ClientApp: trains on this node's partition with the algorithm of the run config."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

import fedpack
from fedpack.flwr import from_record_dict, to_record_dict

from . import task
from .compression import get_codec
from .config import AppConfig

app = ClientApp()


def _metrics(loss: float, data: task.Dataset) -> MetricRecord:
    return MetricRecord({"train_loss": loss, "num-examples": len(data.y)})


def _fedavg(msg: Message, context: Context, model: task.Net, data: task.Dataset, config: AppConfig) -> RecordDict:
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    loss = task.train(model, data, steps=config.local_steps, lr=config.learning_rate, batch_size=config.batch_size)
    return RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": _metrics(loss, data)})


def _scaffold(msg: Message, context: Context, model: task.Net, data: task.Dataset, config: AppConfig) -> RecordDict:
    names = list(msg.content["arrays"].keys())
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, c = from_record_dict(msg.content)
    c_i = [a.numpy() for a in context.state["scaffold.c_i"].values()] if "scaffold.c_i" in context.state else [np.zeros_like(a) for a in c]
    correction = [torch.as_tensor(np.asarray(a - b)) for a, b in zip(c, c_i)]
    loss = task.train(model, data, steps=config.local_steps, lr=config.learning_rate, batch_size=config.batch_size, correction=correction)
    y = [t.detach().numpy() for t in model.state_dict().values()]
    k_lr = config.local_steps * config.learning_rate
    new_c_i = [ci - cc + (xx - yy) / k_lr for ci, cc, xx, yy in zip(c_i, c, x, y)]
    context.state["scaffold.c_i"] = ArrayRecord(new_c_i)
    delta = [a - b for a, b in zip(new_c_i, c_i)]
    content = RecordDict({"metrics": _metrics(loss, data)})
    return to_record_dict(fedpack.get_packer("scaffold"), y, delta, record_dict=content, reply=True, keys=names)


TRAINERS = {"fedavg": _fedavg, "scaffold": _scaffold}


def corrupt(reply: Message) -> None:
    """Make the reply's fedpack payload malformed (for the mixed-fleet tests)."""
    if "fedpack.extra" in reply.content:
        reply.content["fedpack.extra"] = ArrayRecord([np.frombuffer(b"not a fedpack frame", np.uint8)])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train on this node's partition; reply with the algorithm's payload."""
    config = AppConfig.from_run_config(context.run_config)
    partition_id = int(context.node_config["partition-id"])
    num_partitions = int(context.node_config["num-partitions"])
    data = task.load_partition(partition_id, num_partitions, data_seed=config.data_seed, alpha=config.dirichlet_alpha, samples=config.samples_per_client)
    model = task.new_model(config.model_seed)
    global_arrays = msg.content["arrays"]
    content = TRAINERS[config.algorithm](msg, context, model, data, config)
    reply = Message(content, reply_to=msg)
    get_codec(config.compression).encode_reply(reply, global_arrays, context)
    if partition_id == config.corrupt_partition:
        corrupt(reply)
    return reply
