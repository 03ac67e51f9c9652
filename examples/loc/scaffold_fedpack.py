"""SCAFFOLD as a Flower ServerApp + ClientApp, with fedpack."""

import torch
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedpack.flwr import Scaffold, ScaffoldClient, to_array_record

from .task import Net, load_data

server = ServerApp()


@server.main()
def main(grid: Grid, context: Context) -> None:
    """Run SCAFFOLD for three rounds."""
    strategy = Scaffold(server_learning_rate=1.0, fraction_evaluate=0.0)
    strategy.start(grid=grid, initial_arrays=to_array_record(Net().state_dict()), num_rounds=3)


client = ClientApp()


@client.train()
def train(msg: Message, context: Context) -> Message:
    """One SCAFFOLD round on this node."""
    model, batches, lr = Net(), load_data(int(context.node_config["partition-id"])), 0.1
    scaffold = ScaffoldClient(msg, context)
    model.load_state_dict(scaffold.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for x, y in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        scaffold.correct_gradients(model)
        optimizer.step()
    return scaffold.reply(
        model.state_dict(), local_steps=len(batches), learning_rate=lr, num_examples=len(batches)
    )
