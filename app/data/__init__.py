"""What the TUI reads and where: the runs database (typed reads; the two writes of a refresh, each
in its own module), the workspace, experiment folders, protocols, GPUs, and the messages that carry
what the workers read to the widgets."""
