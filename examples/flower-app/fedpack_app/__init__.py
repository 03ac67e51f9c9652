"""fedpack's example Flower app: SCAFFOLD, FedAvg and friends on synthetic non-IID data."""
