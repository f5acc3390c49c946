"""``spkemb-engine train``: one plain training loop, the steps in order.

data -> forward -> loss -> backward -> step -> record -> checkpoint. Progress leaves
the loop as small records that a :class:`engine.process.recording.Recorder` writes; the loop
never knows whether they reach SQLite or an event file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from engine.config import Config, config_to_dict, load_config
from engine.data.audio import num_samples
from engine.errors import CheckpointError, TrainingError
from engine.layout import CONFIG, ExperimentDir, TrainingDir
from engine.process import checkpoints as ckpt
from engine.process import folder_lock, rng_states
from engine.process.distributed import World, agree, batch_mean, join_world, shutdown
from engine.process.lifecycle import open_run
from engine.process.recording import Recorder
from engine.process.stopping import StopRequest
from engine.records import RunDevice
from engine.requests import TrainRequest
from engine.training.checkpointing import RunCheckpoints
from engine.training.memory import check_memory
from engine.training.meter import EpochMeter
from engine.training.optimizer import build_optimizer, load_optimizer_state
from engine.training.resume import StartPlan, checkpoints_state, plan_start
from engine.training.schedulers import learning_rate, margin_at
from engine.training.training_data import TrainingData, prepare_training_data


class NetworkWithLoss(nn.Module):
    """The embedding network and the loss's classifier, wrapped together for DDP."""

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, waveforms: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = self.model(waveforms)                       # (batch, dimension)
        # the margin loss in float32 even under bf16 autocast: bf16 rounds a cosine above 0.998 to 1,
        # where the angular margin's clamp leaves the target no gradient
        with torch.autocast(embeddings.device.type, enabled=False):
            loss, _ = self.loss(embeddings.float(), labels)
        return loss


def cmd_train(args: TrainRequest) -> int:
    """``spkemb-engine train``, once ``engine.early_checks.check_train`` has refused a config that does
    not load, a protocol or subset that cannot be listed, and a misspelt index reader."""
    exp_dir = ExperimentDir(Path(args.exp_dir))
    config = load_config(exp_dir.config)
    trn = exp_dir.training(args.protocol, args.subset)
    world, device = join_world(args.device)
    # before the data is listed: a batch no memory here holds is refused in a second, not after
    check_memory(config, device, workers=args.parallel, world=world.size)
    trust = ckpt.Trust(args.db, accept_changed=args.trust_checkpoint)
    seen, plan = checkpoints_state(trn), plan_start(args, trn, config, trust=trust)
    stop = StopRequest().install()
    try:
        # a second training of the folder is refused before it records anything (on every rank)
        with folder_lock.held(trn.root, trn.lock, folder_lock.TRAINING, world):
            if checkpoints_state(trn) != seen:  # the training that held the folder ended as we planned:
                plan = plan_start(args, trn, config, trust=trust)  # its last epoch is not trained again
            # the run is recorded (`indexing`) before the data is listed: visible from the start; with the
            # seed it trains with (a resumed run's own, 0 where none was given)
            planned = dataclasses.replace(args, seed=plan.seed)
            recorder = open_run("train", trn, planned, device=str(RunDevice(str(device), world.size)),
                                target_epoch=plan.target, config=config_to_dict(config), status="indexing",
                                resume_from=plan.step if plan.resumes else None, fork=plan.init, world=world)
            with recorder.ended(stop) as ending:
                with stop.immediately():
                    data = prepare_training_data(config, args.protocol, args.subset, database=args.database,
                                                 strict=args.strict, seed=plan.seed, world=world,
                                                 workers=args.parallel, pin_memory=device.type == "cuda",
                                                 reindex=args.reindex, progress=recorder.progress)
                if args.strict:  # files changed since the cached index saw them: recorded, then fatal
                    recorder.refuse(data.changed, f"{args.protocol} {args.subset}")
                recorder.indexed(data.problems, f"{args.protocol} {args.subset}")
                # now with the classifier's rows (one per training class) and the index
                check_memory(config, device, workers=args.parallel, world=world.size,
                             classes=len(data.speakers), index=data.index)
                trainer = Trainer(args, config, data, trn, device, world, recorder,
                                  _fork_rows(plan, data.speakers, recorder), stop)
                if trainer.fit() == "stopped":
                    ending.stopped(trainer.reason)
    finally:
        shutdown(world)
    return 0


def _fork_rows(plan: StartPlan, speakers: list[str], recorder: Recorder) -> StartPlan:
    """The plan with a fork's classifier cut to this run's speakers (``--init-classifier``), said when
    some of the checkpoint's are left out."""
    if plan.init is None:
        return plan
    init, left_out = plan.init.for_speakers(speakers)
    if left_out:
        recorder.say(f"train: --init-classifier: the classifier keeps {len(speakers)} of its {len(plan.init.classes)} "
                     f"speakers' rows ({', '.join(left_out[:3])}{', …' if len(left_out) > 3 else ''} not trained here)")
    return dataclasses.replace(plan, init=init)


class Trainer:
    """Holds what one training process needs; :meth:`fit` is the loop."""

    def __init__(self, args: TrainRequest, config: Config, data: TrainingData, trn: TrainingDir,
                 device: torch.device, world: World, recorder: Recorder, plan: StartPlan,
                 stop: StopRequest | None = None) -> None:
        from engine.model import build_loss, build_model

        self.args, self.config, self.data, self.trn = args, config, data, trn
        self.device, self.world, self.recorder = device, world, recorder
        self.checkpoints = RunCheckpoints(trn, recorder, world)
        self.plan = plan
        torch.manual_seed(plan.seed)
        self.model = build_model(config)
        # chunks the network cannot pool (SincTDNN's reach is its own arithmetic): before any checkpoint
        self.model.check_length(num_samples(config.task.duration, config.sample_rate))
        self.loss = build_loss(config, n_classes=len(data.speakers))
        if plan.init is not None:  # before DDP wraps them: every rank loads the same weights
            plan.init.apply(self.model, self.loss)
        self.model, self.loss = self.model.to(device), self.loss.to(device)
        self.net: nn.Module = NetworkWithLoss(self.model, self.loss)
        if world.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = build_optimizer(self.net, config)
        self.step = 0   # optimizer steps: the schedules' clock (the batch position is self.data's)
        self.target = plan.target
        self.stop = stop or StopRequest()
        #: why the run ended early (the run's ``reason``), None when it ran to its target
        self.reason: str | None = None
        #: loss sum, steps and seconds of the resumed epoch before the checkpoint (EpochMeter)
        self.epoch_so_far: dict | None = None

    # -- where the run stands: the data loader counts batches, nobody else does -----------
    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.data.position.epoch

    @property
    def batch(self) -> int:
        """Batches of the current epoch done (0 between epochs)."""
        return self.data.position.batch

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        epoch, batch = self.data.position
        return {"model": self.model.state_dict(), "loss": self.loss.state_dict(),
                "optimizer": self.optimizer.state_dict(), "config": config_to_dict(self.config),
                "epoch": epoch, "batch": batch, "step": self.step, "target": self.target,
                "seed": self.plan.seed, "speakers": self.data.speakers, "rng": rng_states.rng_state(),
                "world_size": self.world.size}

    def restore(self, plan: StartPlan) -> None:
        """Load the states of the checkpoint the plan resumes from, and stand where it stood."""
        saved, path = plan.saved, plan.checkpoint
        assert saved is not None and path is not None, "a resumed plan holds its checkpoint"
        if saved["speakers"] != self.data.speakers:
            raise TrainingError(f"--resume: {path} was trained on other speakers than {self.args.protocol} "
                                f"{self.args.subset} lists now; resume with the same protocol and files")
        fix = f"resume with the {CONFIG} it was trained with"
        ckpt.fit_state(self.model, saved["model"], path, fix)
        ckpt.fit_state(self.loss, saved["loss"], path, fix)
        self.model.load_state_dict(saved["model"])
        self.loss.load_state_dict(saved["loss"])
        try:
            load_optimizer_state(self.optimizer, self.net, saved["optimizer"])
        except ValueError as e:
            raise CheckpointError(f"checkpoint {path} does not fit this network: {e}; {fix}") from None
        self.data.seek(plan.position)
        self.step = plan.step
        self.epoch_so_far = plan.epoch_so_far
        rng_states.set_rng_state(saved["rng"])

    def save(self, partial: bool, epoch_so_far: dict | None = None) -> None:
        self.checkpoints.save({**self.state(), "epoch_so_far": epoch_so_far}, epoch=self.epoch, step=self.step,
                              partial=partial)

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> str:
        self.checkpoints.sweep_stale()
        if self.plan.resumes:
            self.restore(self.plan)
        self.recorder.started(epoch=self.epoch, step=self.step, batches=self.data.batches_per_epoch,
                              chunks=self.config.task.batch_size, batch=self.batch,
                              resumed_from=self.plan.checkpoint)
        if self.plan.resumes:
            self.checkpoints.reconcile()
        if self.step == 0 and not self.checkpoints.has(0):
            # weights/0000.pt: the untrained network, so that validation measures where training started
            # (written once: a run resumed from it has it already, recorded by reconcile if need be)
            self.save(partial=False)
        if self.epoch >= self.target and not self.batch:
            # a resume of a run that reached its target (a job requeued after it ended): exit 0, said
            self.recorder.say(f"train: epoch {self.epoch} is this run's target and is trained already: nothing "
                              f"to do; pass --to {self.target + 10} (or any later epoch) to train further")
        meter = EpochMeter(self.config.task.batch_size)
        self.stop.install()
        try:
            while self.epoch < self.target:
                if not self.train_epoch(meter):
                    return "stopped"
            return "completed"
        finally:
            self.stop.restore()

    def train_epoch(self, meter: EpochMeter) -> bool:
        """One epoch from the current position; False when stopped by a signal (after checkpointing)."""
        epoch = self.epoch + 1
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else contextlib.nullcontext()
        meter.start_epoch(epoch, self.epoch_so_far)
        self.recorder.start_epoch(epoch, self.data.batches_per_epoch, done=self.batch)
        self.epoch_so_far = None
        stopping = False
        for waveforms, labels in self.data.batches():
            # files that changed since indexing, met by this batch (its chunks were drawn elsewhere)
            self.recorder.unreadable(self.data.found(), strict=self.args.strict)
            # both schedules are pure functions of the step: a resumed run needs no scheduler state
            lr = learning_rate(self.config.scheduler, self.step, self.data.batches_per_epoch, self.target)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            m = margin_at(self.config.task, self.step, self.data.batches_per_epoch)
            if m is not None:
                self.loss.set_margin(m)
            waveforms = waveforms.to(self.device, non_blocking=True)  # (batch, sample)
            labels = labels.to(self.device, non_blocking=True)        # (batch,)
            with amp:
                loss = self.net(waveforms, labels)
            self.optimizer.zero_grad()
            (loss if self.data.share_weight == 1.0 else loss * self.data.share_weight).backward()
            self.optimizer.step()
            self.step += 1
            # each rank's loss is the mean of its share: the step's is the whole batch's, as one process has it
            self.record(meter, epoch, batch_mean(loss.detach(), self.data.share_weight, self.world), lr, m)
            stopping = agree(self.stop.requested, self.world)
            if stopping and self.batch:  # mid-epoch: the epoch's last batch moved the data to batch 0
                self.flush(meter)
                self.save(partial=True, epoch_so_far=meter.epoch_so_far())
                self.reason = self.stop_reason(f"at epoch {epoch} step {self.step}")
                self.recorder.say(f"{self.reason}; resume with --resume")
                return False
            if stopping:  # after the epoch's last step: its end-of-epoch checkpoint is the resume point
                break
        self.flush(meter)  # the data stands at (epoch, 0) now: where this epoch's checkpoint resumes
        self.recorder.epoch(meter.end_epoch())
        self.save(partial=False)
        # a signal that came while the epoch's checkpoint was written: it is the resume point, and the
        # next epoch's first step was taken before the stop was seen
        stopping = stopping or agree(self.stop.requested, self.world)
        if stopping:
            self.reason = self.stop_reason(f"at the end of epoch {epoch}")
            self.recorder.say(f"{self.reason}; resume with --resume")
            return False
        return True

    def stop_reason(self, where: str) -> str:
        """The run's ``reason`` when a signal stopped it: which signal, where, under which SLURM job."""
        slurm = os.environ.get("SLURM_JOB_ID")
        return (f"stopped by {self.stop.name or 'a signal on another rank'} {where}"
                + (f" (SLURM job {slurm})" if slurm else ""))

    def record(self, meter: EpochMeter, epoch: int, loss: torch.Tensor, lr: float,
               margin: float | None) -> None:
        """Keep the loss on the device; look at it (one sync) only once per logging interval."""
        meter.add(epoch, self.step, loss, lr, margin)
        if meter.due(self.args.log_every):
            self.flush(meter)

    def flush(self, meter: EpochMeter) -> None:
        rows = meter.take_rows()
        if not rows:
            return
        bad = next((r for r in rows if not _finite(r["loss"])), None)
        if bad is not None:
            raise TrainingError(f"the loss became {bad['loss']} at step {bad['step']} (epoch {bad['epoch']}): "
                                "lower the learning rate or the margin/scale, then --resume from the last "
                                "checkpoint")
        self.recorder.steps(rows)
        # the run's epoch is the one being trained (1-based), as in the step rows
        self.recorder.heartbeat(epoch=self.epoch + (1 if self.batch else 0), step=self.step)


def _finite(x: float) -> bool:
    return x == x and x not in (float("inf"), float("-inf"))


