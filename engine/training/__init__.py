"""Training: the loop's parts that are not the loop (starting from another run's checkpoint, ...)."""
