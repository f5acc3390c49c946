"""What ``train``, ``validate``, ``apply``, ``average`` and ``export`` refuse before the engine imports torch.

Importing torch takes about 2 s on a workstation and tens of seconds from a cluster's network file
system, before a command's first line of work. What a command can refuse without it (a misspelt
protocol or subset, no database.yml, a config that does not load, a folder of the wrong kind) is
refused here, by ``engine.cli.main``, before it imports the command's module: the same line, in a
fraction of a second. Torch-free. The command reads again what it needs of these (the config,
VAL_DIR, the protocol): milliseconds, pyannote.database keeping its registry for the process.
"""

from __future__ import annotations

from engine.config import load_config
from engine.data.listing import check_training_subset, chosen_reader
from engine.data.protocols import check_protocol
from engine.requests import ApplyRequest, AverageRequest, ExportRequest, TrainOptions, ValidateRequest
from engine.validation.params import resolve_name
from engine.validation.trials import check_trial_subset
from engine.validation.val_dir import given_average_dir, given_exp_dir, given_trn_dir, given_val_dir


def check_train(args: TrainOptions) -> None:
    """``train``, and ``sbatch``'s script of it: a misspelt protocol or subset written into a job script
    showed only once the job left the queue, and left the folder made for its log behind."""
    load_config(given_exp_dir(args.exp_dir).config)
    # labels of one file each, or no speaker turns too: refused before the run is recorded (a failed
    # row, a new database and the folder's lock were left behind)
    check_training_subset(args.protocol, args.subset, args.database)
    chosen_reader()  # a misspelt $SPKEMB_INDEX_READER too (the listing reads it again)


def check_validate(args: ValidateRequest) -> None:
    given_trn_dir(args.trn_dir)  # its shape only: validate waits for a TRN_DIR that training is making
    check_trial_subset(args.protocol, args.subset, args.database)
    if args.calibration is not None:
        check_trial_subset(args.protocol, args.calibration, args.database, option="--calibration")


def check_apply(args: ApplyRequest) -> None:
    given_val_dir(args.val_dir)
    check_protocol(args.protocol, args.subset, args.database)


def check_average(args: AverageRequest) -> None:
    given_average_dir(args.dir, last=args.last is not None)


def check_export(args: ExportRequest) -> None:
    resolve_name(given_val_dir(args.val_dir), args.epoch)  # a VAL_DIR not picked yet, a misspelt --epoch
