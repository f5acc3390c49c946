"""Training: the loop, its schedules and what is made from its checkpoints."""
