"""SCAFFOLD written with Flower alone and with fedpack, for counting lines."""
