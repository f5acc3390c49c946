"""A group's figures from the runs database: the seeds of one setup as the mean ± std of the EER
each picked, and per epoch the band of the EER plot; the group of a sweep (whose trials differ in
their settings, so that a mean of them describes no system) as its best trial, with no band."""

from __future__ import annotations

from engine.records.labels import GroupEpoch, GroupSummary
from engine.store.reads import StoreReads


class GroupReads(StoreReads):
    """The group readers of ``Store``."""

    def group_summary(self, group: str) -> GroupSummary:
        """The training runs of ``group`` and the best EER each picked on one trial list (``best_eer`` of
        its newest validate run of that list), so that the seeds of one setup read as mean ± std.

        The list is the one most of the group's runs were validated on (ties: the one validated
        last): a seed also validated on another list (test after development) is not averaged
        with the others' figures of the first. The group a sweep made says so (``sweep``), with
        its best run and how many of its trials were pruned.
        """
        runs = self._read("SELECT id, seed FROM runs WHERE kind = 'train' AND run_group = ? ORDER BY id", (group,))
        picked = self._read(
            "SELECT t.id AS train_id, v.protocol, v.subset, v.best_eer AS eer, v.id FROM runs AS t "
            "JOIN runs AS v ON v.parent_id = t.id AND v.kind = 'validate' AND v.best_eer IS NOT NULL "
            "WHERE t.kind = 'train' AND t.run_group = ? ORDER BY v.id", (group,))
        newest: dict[tuple[str, int], tuple[int, float]] = {}  # (list, run) -> (validate run, EER)
        for row in picked:
            newest[(f"{row['protocol']}.{row['subset']}", int(row["train_id"]))] = (int(row["id"]), float(row["eer"]))
        trials = _most_validated(newest)
        eers = {int(r["id"]): newest[key][1] for r in runs if (key := (trials or "", int(r["id"]))) in newest}
        (sweep,) = self._read(
            "SELECT EXISTS (SELECT 1 FROM sweeps WHERE run_group = ?) AS sweep, (SELECT COUNT(*) FROM sweep_trials "
            "AS t JOIN sweeps AS s ON s.id = t.sweep_id WHERE s.run_group = ? AND t.pruned_epoch IS NOT NULL) "
            "AS pruned", (group, group))
        return GroupSummary(group=group, runs=len(runs), seeds=tuple(r["seed"] for r in runs),
                            eers=tuple(eers.values()), trials=trials, sweep=bool(sweep["sweep"]),
                            best_run=min(eers, key=lambda i: (eers[i], i)) if eers else None,
                            pruned=int(sweep["pruned"]))

    def group_epochs(self, group: str, trials: str | None = None) -> list[GroupEpoch]:
        """Per validated epoch, the EER of each training run of ``group`` (mean ± std: the band of the
        EER plot). Each run's EERs come from its newest validate run of the trial list ``trials``
        (default: ``group_summary``'s) that scored an epoch; averaged weights are left out. Nothing for
        a sweep's group: a band over trials of other settings is no spread of one system."""
        summary = self.group_summary(group)
        trials = trials if trials is not None else summary.trials
        if trials is None or summary.sweep:
            return []
        rows = self._read(
            "SELECT v.epoch, v.eer FROM runs AS t JOIN validations AS v ON v.run_id = "
            "(SELECT MAX(r.id) FROM runs AS r WHERE r.parent_id = t.id AND r.kind = 'validate' "
            "AND r.protocol || '.' || r.subset = ? "
            "AND EXISTS (SELECT 1 FROM validations AS x WHERE x.run_id = r.id AND x.checkpoint_name IS NULL)) "
            "WHERE t.kind = 'train' AND t.run_group = ? AND v.checkpoint_name IS NULL AND v.eer IS NOT NULL "
            "ORDER BY v.epoch, t.id", (trials, group))
        by_epoch: dict[int, list[float]] = {}
        for row in rows:
            by_epoch.setdefault(int(row["epoch"]), []).append(float(row["eer"]))
        return [GroupEpoch(epoch=epoch, eers=tuple(eers)) for epoch, eers in by_epoch.items()]


def _most_validated(newest: dict[tuple[str, int], tuple[int, float]]) -> str | None:
    """The trial list most runs were validated on; among as many, the one validated last."""
    score: dict[str, tuple[int, int]] = {}
    for (trials, _), (validate_id, _) in newest.items():
        runs, last = score.get(trials, (0, 0))
        score[trials] = (runs + 1, max(last, validate_id))
    return max(score, key=lambda t: score[t]) if score else None
