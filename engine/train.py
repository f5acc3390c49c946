"""``spkemb-engine train``: one plain training loop, the steps in order.

data -> forward -> loss -> backward -> step -> record -> checkpoint. Progress leaves
the loop as small records that a :class:`engine.recording.Recorder` writes; the loop
never knows whether they reach SQLite or an event file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from engine import checkpoints as ckpt
from engine.config import Config, config_to_dict, load_config
from engine.data.progress import IndexProgress
from engine.distributed import World, agree, barrier, init_world, pick_device, shutdown
from engine.errors import SpkembError, TrainingError
from engine.recording import Recorder, open_recorder
from engine.schedulers import learning_rate
from engine.stopping import Interrupted, StopRequest
from engine.training_data import TrainingData, prepare_training_data
from engine.training_report import TrainingReport

DEFAULT_EPOCHS = 100


def trn_dir_for(exp_dir: Path, protocol: str, subset: str) -> Path:
    """``EXP_DIR/train/{PROTOCOL}.{subset}``, as in the tutorial."""
    return Path(exp_dir) / "train" / f"{protocol}.{subset}"


class EmbeddingTrainer(nn.Module):
    """The embedding network and the loss's classifier, wrapped together for DDP."""

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, waveforms: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embeddings = self.model(waveforms)                       # (batch, dimension)
        loss, _ = self.loss(embeddings.float(), labels)
        return loss


def cmd_train(args: argparse.Namespace) -> int:
    exp_dir = Path(args.exp_dir)
    config = load_config(exp_dir / "config.yml")
    if args.to is None and not args.resume:
        args.to = DEFAULT_EPOCHS
    trn_dir = trn_dir_for(exp_dir, args.protocol, args.subset)
    device = pick_device(args.device)
    world = init_world(device)
    device = pick_device(args.device, world)
    if not args.resume and ckpt.epochs_on_disk(trn_dir):
        raise TrainingError(f"{trn_dir} already holds checkpoints: add --resume to continue that run, "
                            "or train into another experiment directory")
    stop = StopRequest().install()
    # the run is recorded (`indexing`) before the data is listed: visible from the start
    recorder = open_recorder(args, world=world, config=config, trn_dir=trn_dir, device=str(device),
                             indexing=True)
    progress = IndexProgress(quiet=not world.is_main, beat=recorder.indexing)
    try:
        with stop.immediately():
            data = prepare_training_data(config, args.protocol, args.subset, database=args.database,
                                         strict=args.strict, seed=args.seed, world=world,
                                         workers=args.parallel, pin_memory=device.type == "cuda",
                                         reindex=getattr(args, "reindex", False), progress=progress)
        recorder.indexed(data.problems)
        status = Trainer(args, config, data, trn_dir, device, world, recorder, stop).fit()
    except Interrupted as e:
        # stopped before the first step: nothing to checkpoint; an ordinary stop (exit 0)
        where = progress.where()
        recorder.finish("stopped", f"stopped by {e.signame} before the first step"
                                   + (f" ({where})" if where else ""))
        progress.note(f"stopped by {e.signame} before the first step; nothing to resume from yet")
        return 0
    except BaseException as e:
        reason = str(e) if isinstance(e, SpkembError) else f"{type(e).__name__}: {e}"
        recorder.finish("stopped" if isinstance(e, KeyboardInterrupt) else "failed", reason)
        raise
    finally:
        stop.restore()
        shutdown(world)
    recorder.finish(status)
    return 0


class Trainer:
    """Holds what one training process needs; :meth:`fit` is the loop."""

    def __init__(self, args: argparse.Namespace, config: Config, data: TrainingData, trn_dir: Path,
                 device: torch.device, world: World, recorder: Recorder,
                 stop: StopRequest | None = None) -> None:
        from engine.model import build_loss, build_model

        self.args, self.config, self.data, self.trn_dir = args, config, data, trn_dir
        self.device, self.world, self.recorder = device, world, recorder
        torch.manual_seed(args.seed)
        self.model = build_model(config).to(device)
        self.loss = build_loss(config, n_classes=len(data.speakers)).to(device)
        self.net: nn.Module = EmbeddingTrainer(self.model, self.loss)
        if world.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[device.index] if device.type == "cuda" else None)
        opt = config.optimizer
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=learning_rate(config.scheduler, 0, 1),
                                         momentum=opt.momentum, nesterov=opt.nesterov and opt.momentum > 0,
                                         weight_decay=opt.weight_decay)
        self.epoch, self.batch, self.step = 0, 0, 0   # completed epochs, batches of the current one
        self.target = args.to or DEFAULT_EPOCHS
        self.stop = stop or StopRequest()

    # -- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "loss": self.loss.state_dict(),
                "optimizer": self.optimizer.state_dict(), "config": config_to_dict(self.config),
                "epoch": self.epoch, "batch": self.batch, "step": self.step, "target": self.target,
                "seed": self.args.seed, "speakers": self.data.speakers, "rng": ckpt.rng_state(),
                "world_size": self.world.size}

    def restore(self) -> None:
        path = ckpt.latest_checkpoint(self.trn_dir)
        if path is None:
            raise TrainingError(f"--resume: {self.trn_dir} has no checkpoint yet; train without --resume")
        saved = ckpt.load_checkpoint(path, map_location=self.device)
        if saved["speakers"] != self.data.speakers:
            raise TrainingError(f"--resume: {path} was trained on other speakers than {self.args.protocol} "
                                f"{self.args.subset} lists now; resume with the same protocol and files")
        self.model.load_state_dict(saved["model"])
        self.loss.load_state_dict(saved["loss"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.epoch, self.batch, self.step = saved["epoch"], saved["batch"], saved["step"]
        self.target = self.args.to or saved.get("target", self.target)
        ckpt.set_rng_state(saved["rng"])

    def save(self, partial: bool) -> None:
        if self.world.is_main:
            path = ckpt.resume_path(self.trn_dir) if partial else ckpt.epoch_path(self.trn_dir, self.epoch)
            ckpt.save_checkpoint(path, self.state())
            self.recorder.checkpoint(epoch=self.epoch, step=self.step, path=path, partial=partial)
        barrier(self.world)

    # -- the loop ------------------------------------------------------------------------
    def fit(self) -> str:
        if self.world.is_main:
            ckpt.sweep_stale(self.trn_dir)
        if self.args.resume:
            self.restore()
        self.recorder.started(target_epoch=self.target, epoch=self.epoch, step=self.step)
        if self.step == 0:
            # weights/0000.pt: the untrained network, so that validation measures where training started
            self.save(partial=False)
        report = TrainingReport(self.world, self.target, self.data.batches_per_epoch, self.data.batch_size)
        self.stop.install()
        try:
            with report:
                while self.epoch < self.target:
                    if not self.train_epoch(report):
                        return "stopped"
            return "completed"
        finally:
            self.stop.restore()

    def train_epoch(self, report: TrainingReport) -> bool:
        """One epoch from the current position; False when stopped by a signal (after checkpointing)."""
        epoch = self.epoch + 1
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else _no_autocast()
        report.start_epoch(epoch, self.batch)
        stopping = False
        for waveforms, labels in self.data.batches(epoch=epoch, start=self.batch):
            lr = learning_rate(self.config.scheduler, self.step, self.data.batches_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            waveforms = waveforms.to(self.device, non_blocking=True)  # (batch, sample)
            labels = labels.to(self.device, non_blocking=True)        # (batch,)
            with amp:
                loss = self.net(waveforms, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.batch += 1
            self.step += 1
            self.record(report, epoch, loss.detach(), lr)
            stopping = agree(self.stop.requested, self.world, self.device)
            if stopping and self.batch < self.data.batches_per_epoch:
                self.flush(report)
                self.save(partial=True)
                report.note(f"stopped by {self.stop.name or 'a signal on another rank'} at epoch {epoch} "
                            f"step {self.step}; resume with --resume")
                return False
            if stopping:  # after the epoch's last step: its end-of-epoch checkpoint is the resume point
                break
        self.flush(report)
        self.epoch, self.batch = epoch, 0
        summary = report.end_epoch()
        self.recorder.epoch(epoch=epoch, loss=summary.loss, lr=summary.lr,
                            chunks_per_s=summary.chunks_per_s, seconds=summary.seconds)
        self.save(partial=False)
        if stopping:
            report.note(f"stopped at the end of epoch {epoch}; resume with --resume")
            return False
        return True

    def record(self, report: TrainingReport, epoch: int, loss: torch.Tensor, lr: float) -> None:
        """Keep the loss on the device; look at it (one sync) only once per logging interval."""
        report.add(epoch, self.step, loss, lr)
        if report.due(self.args.log_every):
            self.flush(report)

    def flush(self, report: TrainingReport) -> None:
        rows = report.take_rows()
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


class _no_autocast:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


