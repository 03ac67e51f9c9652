"""What both SCAFFOLD versions share and is not counted: the model and synthetic data."""

from __future__ import annotations

import torch

FEATURES, CLASSES = 8, 4


class Net(torch.nn.Module):
    """A linear classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(FEATURES, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits."""
        return self.fc(x)  # type: ignore[no-any-return]


def load_data(partition_id: int, n: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Non-IID batches: node ``partition_id`` sees mostly two classes."""
    g = torch.Generator().manual_seed(partition_id)
    y = torch.tensor([partition_id % CLASSES, (partition_id + 1) % CLASSES])[
        torch.randint(0, 2, (n,), generator=g)
    ]
    x = torch.nn.functional.one_hot(y, FEATURES).float() * 3 + torch.randn(n, FEATURES, generator=g)
    return list(zip(x.split(16), y.split(16), strict=True))
