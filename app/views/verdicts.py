"""What ``spkemb-engine verify`` answered, as the lines of a dialog: where the threshold came from, then a
line per test recording (score and decision), aligned."""

from __future__ import annotations


def verdict_lines(stdout: str, stderr: str) -> list[str]:
    """``verify``'s standard error (the checkpoint, the threshold, recordings too short), a blank line,
    then ``TEST  SCORE  DECISION`` for each of its tab-separated lines."""
    rows = [line.split("\t") for line in stdout.splitlines() if line.count("\t") == 3]
    width = max((len(test) for _, test, _, _ in rows), default=0)
    said = [line.removeprefix("verify: ") for line in stderr.splitlines() if line.strip()]
    return [*said, "", *(f"{test:<{width}}  {score}  {decision}" for _, test, score, decision in rows)]
