"""SCAFFOLD as a Flower ServerApp + ClientApp, with Flower alone (the same algorithm)."""

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from .task import Net, load_data


class Scaffold(FedAvg):
    """FedAvg plus SCAFFOLD's server control variates."""

    def __init__(self, server_learning_rate: float = 1.0, **kwargs: object) -> None:
        """``server_learning_rate`` is SCAFFOLD's global step size."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lr, self.c = server_learning_rate, {}

    def configure_train(self, server_round, arrays, config, grid):  # type: ignore[no-untyped-def]
        """Send the control variates with the weights."""
        self.x = {k: v.numpy() for k, v in arrays.items()}
        self.c = self.c or {k: np.zeros_like(v) for k, v in self.x.items()}
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.num_nodes = len(list(grid.get_node_ids()))
        for message in messages:  # FedAvg's messages share one RecordDict
            message.content["c"] = ArrayRecord({k: Array(v) for k, v in self.c.items()})
        return messages

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
        """Average with FedAvg, step with the server learning rate, update c."""
        replies = [r for r in replies if r.has_error() or "delta_c" in r.content.array_records]
        deltas = [r.content.array_records.pop("delta_c") for r in replies if not r.has_error()]
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is None or not deltas:
            return arrays, metrics
        new = {k: self.x[k] + self.lr * (v.numpy() - self.x[k]) for k, v in arrays.items()}
        for k in self.c:
            mean = np.mean([d[k].numpy() for d in deltas], axis=0)
            self.c[k] = self.c[k] + len(deltas) / self.num_nodes * mean
        return ArrayRecord({k: Array(np.asarray(v)) for k, v in new.items()}), metrics


server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    """Run SCAFFOLD for three rounds."""
    strategy = Scaffold(server_learning_rate=1.0, fraction_evaluate=0.0)
    strategy.start(grid=grid, initial_arrays=ArrayRecord(Net().state_dict()), num_rounds=3)


client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    """One SCAFFOLD round on this node."""
    model, batches, lr = Net(), load_data(int(context.node_config["partition-id"])), 0.1
    x = msg.content["arrays"].to_torch_state_dict()
    c = msg.content["c"].to_torch_state_dict()
    c_i = context.state["c_i"].to_torch_state_dict() if "c_i" in context.state else None
    c_i = c_i or {k: torch.zeros_like(v) for k, v in c.items()}
    model.load_state_dict(x)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for xb, yb in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.grad += c[name] - c_i[name]
        optimizer.step()
    y = {k: v.detach() for k, v in model.state_dict().items()}
    delta = {k: (x[k] - y[k]) / (len(batches) * lr) - c[k] for k in c}
    context.state["c_i"] = ArrayRecord({k: c_i[k] + delta[k] for k in c})
    content = RecordDict(
        {
            "arrays": ArrayRecord(y),
            "delta_c": ArrayRecord(delta),
            "metrics": MetricRecord({"num-examples": len(batches)}),
        }
    )
    return Message(content=content, reply_to=msg)
