"""Text of what the TUI shows, from typed records: pure functions, no widgets, no reads."""
