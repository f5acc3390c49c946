"""Comparing systems like a paper: the pivot table, whether a difference is real, and the report."""
