"""Engine commands the TUI runs: their command lines (from the engine's typed requests) and the
children it launches, polls and stops."""
