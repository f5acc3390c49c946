"""Training: the loop, its schedules, starting from another run's checkpoint, and what is made from its checkpoints."""
