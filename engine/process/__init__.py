"""What every engine process shares: stop signals, the device and the DDP world, the run recorder,
checkpoints."""
