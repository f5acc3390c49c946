"""Example queries, shown in docs/database.md (generated from this dict) and offered by the TUI's Query screen."""

from __future__ import annotations

#: title -> SQL (plain SQLite, runs in the ``sqlite3`` shell, datasette or ``Store.query``)
EXAMPLE_QUERIES: dict[str, str] = {
    "best EER per run": """\
SELECT v.run_id AS validate_run, v.train_run_id AS train_run, r.protocol, r.subset,
       v.epoch AS best_epoch, MIN(v.eer) AS best_eer, COUNT(*) AS epochs_validated
FROM validations AS v JOIN runs AS r ON r.id = v.run_id
WHERE v.checkpoint_name IS NULL
GROUP BY v.run_id
ORDER BY best_eer""",
    "averaged weights against the best epoch": """\
SELECT a.run_id AS validate_run, a.checkpoint_name, a.eer, a.eer_low, a.eer_high,
       b.epoch AS best_epoch, b.eer AS best_eer, b.eer_low AS best_low, b.eer_high AS best_high
FROM validations AS a
JOIN validations AS b ON b.run_id = a.run_id AND b.checkpoint_name IS NULL
 AND b.id = (SELECT id FROM validations WHERE run_id = a.run_id AND checkpoint_name IS NULL
             ORDER BY eer, epoch LIMIT 1)
WHERE a.checkpoint_name IS NOT NULL
ORDER BY a.run_id, a.checkpoint_name""",
    "runs still running": """\
SELECT id, kind, name, protocol, subset, epoch, target_epoch, step, host, pid,
       datetime(started_at, 'unixepoch', 'localtime') AS started,
       ROUND((julianday('now') - 2440587.5) * 86400.0 - heartbeat_at, 1) AS heartbeat_age_s
FROM runs
WHERE status = 'running'
ORDER BY started_at""",
    "last loss of each training run": """\
SELECT r.id AS run, r.name, r.status, s.step, s.epoch, s.loss, s.chunks_per_s
FROM runs AS r JOIN train_steps AS s ON s.run_id = r.id
WHERE r.kind = 'train'
  AND s.id = (SELECT id FROM train_steps WHERE run_id = r.id ORDER BY step DESC, id DESC LIMIT 1)
ORDER BY r.id DESC""",
    "stale extractions": """\
SELECT extraction_id, apply_run_id, protocol, subset, extracted_checkpoint, current_checkpoint, out_dir
FROM stale_extractions
ORDER BY extraction_id DESC""",
    "DER of each extraction": """\
SELECT d.out_dir, COALESCE(e.checkpoint_name, d.epoch) AS checkpoint, d.protocol, d.subset, d.num_speakers,
       d.threshold, d.collar,
       d.skip_overlap, ROUND(100 * d.der, 2) AS der_pct, ROUND(100 * d.confusion / d.total, 2) AS confusion_pct,
       ROUND(100 * d.missed / d.total, 2) AS missed_pct, e.checkpoint_sha256
FROM diarizations AS d LEFT JOIN extractions AS e ON e.id = d.extraction_id
ORDER BY d.id DESC""",
    "best EER of each group (its seeds), per trial list": """\
SELECT t.run_group AS "group", v.protocol || '.' || v.subset AS trials,
       (SELECT COUNT(*) FROM runs AS g WHERE g.kind = 'train' AND g.run_group = t.run_group) AS runs,
       COUNT(*) AS validated, GROUP_CONCAT(t.seed) AS seeds, ROUND(100 * AVG(v.best_eer), 2) AS mean_eer_pct,
       ROUND(100 * MIN(v.best_eer), 2) AS min_eer_pct, ROUND(100 * MAX(v.best_eer), 2) AS max_eer_pct
FROM runs AS t
JOIN runs AS v ON v.parent_id = t.id AND v.kind = 'validate' AND v.best_eer IS NOT NULL
 AND v.id = (SELECT MAX(id) FROM runs WHERE kind = 'validate' AND parent_id = t.id AND best_eer IS NOT NULL
             AND protocol = v.protocol AND subset = v.subset)
WHERE t.kind = 'train' AND t.run_group IS NOT NULL
GROUP BY t.run_group, v.protocol, v.subset
ORDER BY trials, mean_eer_pct""",
    "software of each run": """\
SELECT id, kind, name, status, json_extract(software, '$.spkemb') AS spkemb,
       json_extract(software, '$.git') AS git_commit, json_extract(software, '$.torch') AS torch,
       json_extract(software, '$.python') AS python
FROM runs
WHERE json_valid(software)
ORDER BY id DESC""",
    "data problems": """\
SELECT p.run_id AS run, r.kind, p.path, p.problem, p.fatal
FROM data_problems AS p JOIN runs AS r ON r.id = p.run_id
ORDER BY p.id DESC""",
}
