"""Numbered schema migrations of the runs database; never edit one, add the next.

sqlite-utils' ``Migrations`` records each applied migration by name in
``_sqlite_migrations``; ``engine.store.upgrade`` applies the pending ones.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATION_SET = "spkemb"

migrations = Migrations(MIGRATION_SET)


#: which extractions the view ``stale_extractions`` lists (m006's, kept as it was by m011)
_STALE_EXTRACTIONS = """FROM extractions AS e
JOIN runs AS chose ON chose.id = e.validate_run_id
JOIN runs AS cur ON cur.id = (SELECT MAX(id) FROM runs WHERE kind = 'validate'
                              AND out_dir = chose.out_dir AND best_epoch IS NOT NULL)
WHERE cur.best_epoch IS NOT e.epoch
   OR COALESCE(cur.best_checkpoint, '')
      IS NOT (CASE WHEN e.checkpoint_name LIKE 'avg-%' THEN e.checkpoint_name ELSE '' END)"""


@migrations()
def m001_initial(db: Database) -> None:
    """Runs and everything a run records."""
    db.table("runs").create({
        "id": int, "name": str, "kind": str, "status": str,
        "exp_dir": str, "out_dir": str, "protocol": str, "subset": str,
        "config": str, "command": str, "parent_id": int,
        "host": str, "pid": int, "pid_start": float, "slurm_job_id": str, "device": str,
        "started_at": float, "ended_at": float, "heartbeat_at": float,
        "epoch": int, "target_epoch": int, "step": int, "progress": float, "progress_total": float,
        "best_epoch": int, "best_eer": float, "best_how": str, "reason": str, "log_path": str,
    }, pk="id", not_null={"kind", "status"}, foreign_keys=[("parent_id", "runs", "id")])
    db.table("train_steps").create({
        "id": int, "run_id": int, "step": int, "epoch": int, "loss": float, "lr": float,
        "chunks_per_s": float, "time": float,
    }, pk="id", not_null={"run_id", "step"}, foreign_keys=[("run_id", "runs", "id")])
    db.table("train_epochs").create({
        "id": int, "run_id": int, "epoch": int, "loss": float, "lr": float,
        "chunks_per_s": float, "seconds": float, "time": float,
    }, pk="id", not_null={"run_id", "epoch"}, foreign_keys=[("run_id", "runs", "id")])
    db.table("checkpoints").create({
        "id": int, "run_id": int, "epoch": int, "step": int, "path": str, "partial": int,
        "time": float,
    }, pk="id", not_null={"run_id", "path"}, foreign_keys=[("run_id", "runs", "id")])
    db.table("validations").create({
        "id": int, "run_id": int, "train_run_id": int, "epoch": int, "eer": float,
        "eer_low": float, "eer_high": float, "mindcf_01": float, "mindcf_005": float,
        "threshold": float, "n_trials": int, "scores_path": str, "time": float,
    }, pk="id", not_null={"run_id", "epoch"},
        foreign_keys=[("run_id", "runs", "id"), ("train_run_id", "runs", "id")])
    db.table("extractions").create({
        "id": int, "run_id": int, "epoch": int, "protocol": str, "subset": str, "out_dir": str,
        "mode": str, "step": float, "duration": float, "files": int, "audio_seconds": float,
        "wall_seconds": float, "time": float,
    }, pk="id", not_null={"run_id"}, foreign_keys=[("run_id", "runs", "id")])
    db.table("data_problems").create({
        "id": int, "run_id": int, "path": str, "problem": str, "fatal": int, "time": float,
    }, pk="id", not_null={"run_id", "path", "problem"}, foreign_keys=[("run_id", "runs", "id")])


@migrations()
def m002_indexes_and_event_imports(db: Database) -> None:
    """Indexes for the TUI's polling queries; bookkeeping that makes event import idempotent."""
    db.table("train_steps").create_index(["run_id", "step"])
    db.table("train_epochs").create_index(["run_id", "epoch"])
    db.table("checkpoints").create_index(["run_id", "epoch"])
    db.table("validations").create_index(["run_id", "epoch"])
    db.table("validations").create_index(["train_run_id"])
    db.table("extractions").create_index(["run_id"])
    db.table("data_problems").create_index(["run_id"])
    db.table("runs").create_index(["status"])
    db.table("runs").create_index(["out_dir"])
    db.table("event_imports").create({
        "uid": str, "run_id": int, "path": str, "seq": int, "imported_at": float,
    }, pk="uid", not_null={"run_id", "seq"}, foreign_keys=[("run_id", "runs", "id")])


@migrations()
def m003_runs_change_counter(db: Database) -> None:
    """``runs.changed``: a counter bumped by every insert or update of a run, by triggers.

    Writers take the write lock one at a time, so the counter grows in commit order: a
    reader that has seen every change up to N finds the next ones with ``changed > N``
    (the TUI's live refresh reads those rows only). Triggers rather than writer code, so
    that a run changed by hand with ``sqlite3`` shows up too; ``recursive_triggers`` is off
    (SQLite's default), so the triggers' own updates do not fire them again.
    """
    db.table("runs").add_column("changed", int)
    db.execute("UPDATE runs SET changed = id")
    db.table("runs").create_index(["changed"])
    db.execute("CREATE TRIGGER runs_changed_on_insert AFTER INSERT ON runs BEGIN "
               "UPDATE runs SET changed = (SELECT COALESCE(MAX(changed), 0) + 1 FROM runs) "
               "WHERE id = NEW.id; END")
    db.execute("CREATE TRIGGER runs_changed_on_update AFTER UPDATE ON runs "
               "WHEN NEW.changed IS OLD.changed BEGIN "
               "UPDATE runs SET changed = (SELECT COALESCE(MAX(changed), 0) + 1 FROM runs) "
               "WHERE id = NEW.id; END")


@migrations()
def m004_margin_and_lineage(db: Database) -> None:
    """``train_steps.margin``: the loss margin in force at each step (a margin schedule varies it);
    a forked run's lineage: ``runs.init_from`` (the checkpoint it started from), ``init_epoch``
    (that checkpoint's epoch) and ``init_run_id`` (the run that wrote it, when known).

    ``parent_id`` stays the validate/apply -> train link; a fork is another relation.
    """
    db.table("train_steps").add_column("margin", float)
    db.table("runs").add_column("init_from", str)
    db.table("runs").add_column("init_epoch", int)
    db.table("runs").add_column("init_run_id", int)


@migrations()
def m005_named_checkpoints_and_score_norm(db: Database) -> None:
    """Weights averaged over epochs (``avg-top5``) beside epoch numbers; AS-norm figures.

    A named checkpoint keeps ``epoch`` (the last epoch it averages, so that plots can place it)
    and adds its ``name``; ``averaged`` lists the epochs that went in (JSON). A validation of one
    has the same name in ``checkpoint_name`` (NULL for an epoch). The ``*_asnorm`` columns hold
    the figures after adaptive S-norm with a cohort of ``cohort_size`` (NULL when not asked).
    """
    db.table("checkpoints").add_column("name", str)
    db.table("checkpoints").add_column("averaged", str)
    for column, kind in (("checkpoint_name", str), ("cohort_size", int), ("eer_asnorm", float),
                         ("eer_asnorm_low", float), ("eer_asnorm_high", float),
                         ("mindcf_01_asnorm", float), ("mindcf_005_asnorm", float),
                         ("threshold_asnorm", float)):
        db.table("validations").add_column(column, kind)
    db.table("extractions").add_column("checkpoint_name", str)
    db.table("runs").add_column("best_checkpoint", str)


@migrations()
def m006_diarization_and_lineage(db: Database) -> None:
    """The diarization check of extractions, and where each extraction's weights came from.

    ``diarizations``: one row per ``diarize`` (or ``apply --diarize``) of an extraction folder:
    the settings (collar, skip_overlap, oracle or tuned number of speakers, the threshold) and
    the total DER with its components in seconds; ``diarization_files``: the same per file.
    ``extractions`` gain the checkpoint (path, sha256, name) and the validate run whose
    params.yml chose it; the view ``stale_extractions`` lists extractions whose epoch is no
    longer the one that VAL_DIR's newest validate run points at (an epoch, or averaged weights
    such as ``avg-top5``: ``runs.best_checkpoint``).
    """
    db.table("diarizations").create({
        "id": int, "run_id": int, "extraction_id": int, "out_dir": str, "epoch": int,
        "protocol": str, "subset": str, "collar": float, "skip_overlap": int,
        "num_speakers": str, "threshold": float, "tuned_on": str, "linkage": str, "frame_rule": str,
        "files": int, "der": float, "missed": float, "false_alarm": float, "confusion": float,
        "total": float, "time": float,
    }, pk="id", not_null={"out_dir", "der"},
        foreign_keys=[("run_id", "runs", "id"), ("extraction_id", "extractions", "id")])
    db.table("diarization_files").create({
        "id": int, "diarization_id": int, "uri": str, "der": float, "missed": float,
        "false_alarm": float, "confusion": float, "total": float, "speakers": int,
        "speakers_found": int, "rttm_path": str,
    }, pk="id", not_null={"diarization_id", "uri"},
        foreign_keys=[("diarization_id", "diarizations", "id")])
    db.table("diarizations").create_index(["out_dir"])
    db.table("diarizations").create_index(["run_id"])
    db.table("diarization_files").create_index(["diarization_id"])
    for column, kind in (("checkpoint", str), ("checkpoint_sha256", str),
                         ("validate_run_id", int), ("chosen_by", str)):
        db.table("extractions").add_column(column, kind)
    # the validation an extraction followed is the newest validate run of the same VAL_DIR
    # (validate and pick record params.yml's epoch there as best_epoch)
    db.execute("""CREATE VIEW stale_extractions AS
SELECT e.id AS extraction_id, e.run_id AS apply_run_id, e.protocol, e.subset,
       e.epoch AS extracted_epoch, cur.best_epoch AS current_epoch, cur.id AS validate_run_id,
       e.checkpoint, e.checkpoint_sha256, e.out_dir, e.time
""" + _STALE_EXTRACTIONS)


@migrations()
def m007_checkpoint_hashes(db: Database) -> None:
    """``checkpoints.sha256``: the hash of the file as written, so that a file replaced under its row
    is noticed before it is used; ``runs.init_sha256``: that of the checkpoint a fork started from.

    Rows of earlier releases keep NULL (nothing to compare: their files are used as they are).
    """
    db.table("checkpoints").add_column("sha256", str)
    db.table("runs").add_column("init_sha256", str)


@migrations()
def m008_groups_tags_notes(db: Database) -> None:
    """``runs.seed``, ``runs.run_group``, ``runs.tags`` and ``runs.note``: how runs are compared like
    a paper's table (the runs of one group differing only by seed, averaged).

    ``tags`` is a JSON array of words (``json_each`` queries it); ``run_group`` is not named
    ``group``, an SQL keyword. Rows of earlier releases keep NULL: no group, no tag, seed unknown.
    """
    runs = db.table("runs")
    runs.add_column("seed", int)
    runs.add_column("run_group", str)
    runs.add_column("tags", str)
    runs.add_column("note", str)
    runs.create_index(["run_group"])


@migrations()
def m009_calibration(db: Database) -> None:
    """What calibration adds to a validation: ``min_cllr`` (always computable from the scores),
    and after ``validate --calibration SUBSET`` the Cllr and actual DCFs of the calibrated scores
    and the trial list the calibration was trained on (``calibration_list``). Rows of earlier
    releases, and validations without a calibration list, keep NULL.
    """
    for column, kind in (("min_cllr", float), ("cllr", float), ("actual_dcf_01", float),
                         ("actual_dcf_005", float), ("calibration_list", str)):
        db.table("validations").add_column(column, kind)


@migrations()
def m010_sweeps_and_queue(db: Database) -> None:
    """Sweeps (many runs from one config) and the device queue that starts queued runs.

    ``sweeps``: one row per ``spkemb-engine sweep`` (how its trials were chosen, its folder, group,
    slots and pruning rule); ``sweep_trials``: one row per trial (its folder, the swept values, the
    diff of its config against the base, its training run, why it was pruned). A queued run is a
    ``runs`` row with status ``queued``; ``queue_entries`` holds how the queue starts it (the
    validation beside it, the slot, the claim that makes a start happen once, the children's pids);
    ``queues`` one row per queue process (host, pid + start time: visible and stoppable).
    """
    db.table("sweeps").create({
        "id": int, "name": str, "method": str, "base_config": str, "sweep_dir": str, "protocol": str,
        "subset": str, "space": str, "seeds": int, "epochs": int, "planned": int, "slots": str,
        "prune": str, "prune_after": int, "run_group": str, "command": str, "script": str,
        "slurm_job_id": str, "created_at": float,
    }, pk="id", not_null={"name", "method", "sweep_dir"})
    db.table("sweep_trials").create({
        "id": int, "sweep_id": int, "number": int, "exp_dir": str, "out_dir": str, "params": str,
        "seed": int, "diff": str, "run_id": int, "optuna_trial": int, "pruned_epoch": int,
        "prune_reason": str, "created_at": float,
    }, pk="id", not_null={"sweep_id", "number", "exp_dir"},
        foreign_keys=[("sweep_id", "sweeps", "id"), ("run_id", "runs", "id")])
    db.table("sweep_trials").create_index(["sweep_id", "number"], unique=True)
    db.table("sweep_trials").create_index(["run_id"])
    db.table("queue_entries").create({
        "run_id": int, "validate": str, "slot": str, "claim": str, "queue_id": int, "child_pid": int,
        "child_start": float, "validate_pid": int, "validate_start": float, "queued_at": float,
        "started_at": float, "ended_at": float,
    }, pk="run_id", foreign_keys=[("run_id", "runs", "id")])
    db.table("queue_entries").create_index(["ended_at"])
    db.table("queues").create({
        "id": int, "host": str, "pid": int, "pid_start": float, "slots": str, "started_at": float,
        "heartbeat_at": float, "ended_at": float, "reason": str,
    }, pk="id", not_null={"host", "pid"})


@migrations()
def m011_stale_extractions_name_checkpoints(db: Database) -> None:
    """``stale_extractions`` names the checkpoints (``7``, ``avg-top5``): its epochs alone could not say
    why an extraction of averaged weights was stale (``extracted_epoch 2, current_epoch 2``)."""
    db.execute("DROP VIEW IF EXISTS stale_extractions")
    db.execute("""CREATE VIEW stale_extractions AS
SELECT e.id AS extraction_id, e.run_id AS apply_run_id, e.protocol, e.subset,
       e.epoch AS extracted_epoch, cur.best_epoch AS current_epoch, cur.id AS validate_run_id,
       e.checkpoint, e.checkpoint_sha256, e.out_dir, e.time,
       COALESCE(e.checkpoint_name, CAST(e.epoch AS TEXT)) AS extracted_checkpoint,
       COALESCE(cur.best_checkpoint, CAST(cur.best_epoch AS TEXT)) AS current_checkpoint
""" + _STALE_EXTRACTIONS)


@migrations()
def m012_runs_by_parent(db: Database) -> None:
    """An index of ``runs`` by parent and kind: a run's validate and apply runs, and the first
    validation of a sweep trial's run (read for each of its validations), were a scan of every run."""
    db.table("runs").create_index(["parent_id", "kind"])


@migrations()
def m013_runs_software(db: Database) -> None:
    """``runs.software``: what the run ran with, a JSON object (spkemb's version, the git commit of its
    source when it ran from a checkout, Python's, torch's and torchaudio's versions); NULL for the
    runs recorded before, and for imported runs whose event file does not say."""
    db.table("runs").add_column("software", str)


def known_migrations() -> list[str]:
    """Names of the migrations this release knows, in order."""
    return [m.name for m in migrations._migrations]
