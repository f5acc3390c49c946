"""``spkemb-engine diarize`` (and ``apply --diarize``): the diarization check of an extraction folder.

Reads ``VAL_DIR/apply/EPOCH`` with ``engine.Precomputed``, clusters and scores each file of
``PROTOCOL.{subset}()`` (``engine.extraction.diarize``), writes ``{uri}.rttm`` beside each
``{uri}.npy`` (default settings) or in the settings' own ``rttm-…/`` subfolder
(``engine.layout.diarization_folder``: a check with another collar keeps the first one's), prints
per-file and total DER and records them in the runs database
(``diarizations``, ``diarization_files``). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_text, sweep_dead_temps
from engine.console import out, plural, say
from engine.data.protocols import load_protocol
from engine.data.references import diarization_references
from engine.errors import ProtocolError, SpkembError
from engine.extraction.diarize import (
    NUM_SPEAKERS,
    Components,
    DerSettings,
    FileDer,
    FileInput,
    describe,
    prepare,
    score,
    tune_threshold,
)
from engine.extraction.precomputed import Precomputed
from engine.layout import EXTRACTION_DIR_SHAPE, ExtractionDir, diarization_folder
from engine.progress import Progress
from engine.requests import ApplyRequest, DiarizeRequest

#: the widest forgiveness collar, seconds: 40 times NIST's, well short of forgiving a whole turn
MAX_COLLAR = 10.0


@dataclass(frozen=True)
class DiarizationJob:
    """One diarization check: the extraction folder, the protocol subset and how to score."""

    extraction: ExtractionDir
    protocol: str
    subset: str = "test"
    settings: DerSettings = DerSettings()
    database: str | None = None
    db: str | None = None


@dataclass(frozen=True)
class DiarizationReport:
    """Per-file and total DER of one extraction folder, and how the speakers were counted."""

    request: DiarizationJob
    files: list[FileDer]
    total: Components
    threshold: float | None
    tuned_on: str | None
    rttms: dict[str, Path]
    epoch: int | None

    def record(self) -> dict[str, Any]:
        """The keyword arguments of ``Store.add_diarization`` (and of its event-file twin)."""
        s, t = self.request.settings, self.total
        return {"out_dir": str(self.request.extraction.root), "epoch": self.epoch,
                "protocol": self.request.protocol, "subset": self.request.subset, "collar": s.collar,
                "skip_overlap": s.skip_overlap, "num_speakers": s.num_speakers, "threshold": self.threshold,
                "tuned_on": self.tuned_on, **describe(), "der": t.der, "missed": t.missed,
                "false_alarm": t.false_alarm, "confusion": t.confusion, "total": t.total,
                "files": [f.record(str(self.rttms[f.uri].resolve())) for f in self.files]}

    def lines(self) -> list[str]:
        """``uri  DER 12.34 % (missed …)`` per file, then the total and the conventions."""
        s = self.request.settings
        width = max([len(f.uri) for f in self.files] + [5])
        out = [f"{f.uri:<{width}}  {f.components.text()}  speakers {f.speakers} -> {f.speakers_found}"
               for f in self.files]
        how = ("oracle number of speakers" if s.num_speakers == "oracle"
               else f"threshold {self.threshold:.3f} tuned on {self.tuned_on}")
        out.append(f"{'total':<{width}}  {self.total.text()}  over {plural(len(self.files), 'file')} "
                   f"(collar {s.collar:g} s, overlap {'skipped' if s.skip_overlap else 'scored'}, {how})")
        return out


def _rttm_paths(extraction: ExtractionDir, files: list[Any], settings: DerSettings) -> dict[str, Path]:
    folder = diarization_folder(collar=settings.collar, skip_overlap=settings.skip_overlap,
                                num_speakers=settings.num_speakers)
    paths = {}
    for f in files:
        path = extraction.rttm(f["uri"], folder=folder)
        if path is None:
            raise SpkembError(f"uri {f['uri']!r} cannot name an RTTM inside {extraction.root} (it would "
                              "leave the folder): fix the protocol's uri list")
        paths[f["uri"]] = path
    return paths


def _prepare(precomputed: Precomputed, files: list[Any], subset: str, progress: Progress) -> list[FileInput]:
    """Each file's reference and clustering tree, with progress: a meeting's clustering takes a minute
    or more (an AMI test subset, many), which passed without a word."""
    items = []
    try:
        with progress.phase(f"clustering the {subset} subset", len(files), said=False, opening=False) as phase:
            for f in files:
                items.append(prepare(f, precomputed(f)))
                phase.advance(1, detail=str(f["uri"]))
    except SpkembError as e:
        raise SpkembError(f"{e} (the diarization check of the {subset} subset reads them)") from e
    return items


def _development(request: DiarizationJob, protocol: Any) -> list[Any]:
    """The development files the speaker-count threshold is tuned on (``--num-speakers tuned``)."""
    try:
        dev = diarization_references(protocol, request.protocol, "development")
    except ProtocolError as e:
        raise SpkembError(f"{e}; without a development subset use --num-speakers oracle") from e
    # their embeddings come from an earlier apply into this folder: checked before apply's extraction
    source = f"protocol {request.protocol} (development)"
    missing = [str(f["uri"]) for f in dev if not request.extraction.embeddings(str(f["uri"]), source=source).is_file()]
    if missing:
        raise SpkembError(f"--num-speakers tuned tunes on the development subset's embeddings, and "
                          f"{request.extraction.root} holds none for {len(missing)} of its {plural(len(dev), 'file')} "
                          f"({missing[0]!r} first): extract them into this folder first (`spkemb-engine apply "
                          "--subset development` with the same epoch, runtime and --step), or use "
                          "--num-speakers oracle")
    return dev


def check_settings(settings: DerSettings, subset: str) -> None:
    """Refuse settings that cannot give a fair DER (before any extraction is paid for)."""
    if settings.num_speakers not in NUM_SPEAKERS:
        raise SpkembError(f"--num-speakers {settings.num_speakers}: use oracle or tuned")
    if not 0 <= settings.collar <= MAX_COLLAR:  # a collar of inf forgave every error: DER 0.00 %, exit 0
        raise SpkembError(f"--collar {settings.collar}: a collar is a duration from 0 to {MAX_COLLAR:g} seconds "
                          "(0.5 is NIST md-eval's ±0.25 s)")
    if settings.num_speakers == "tuned" and subset == "development":
        raise SpkembError("--num-speakers tuned tunes the threshold on the development subset: score "
                          "another subset (--subset test), or use --num-speakers oracle")


@dataclass(frozen=True)
class PreparedCheck:
    """A diarization check with all but the embeddings read and checked: the files of the subset,
    where each one's RTTM goes, and (``--num-speakers tuned``) the development files to tune on."""

    request: DiarizationJob
    files: list[Any]
    rttms: dict[str, Path]
    development: list[Any] | None = None


def prepare_check(request: DiarizationJob, protocol: Any = None) -> PreparedCheck:
    """Everything the check needs but the embeddings, checked: ``apply --diarize`` calls it before
    hours of extraction (with the protocol it loaded), ``diarize`` right before :func:`run_check`.

    Raises
    ------
    SpkembError
        Settings that cannot give a fair DER, a protocol subset without speaker turns (or, to
        tune on, without a development subset that has them), or a uri that cannot name an RTTM
        inside the extraction folder.
    """
    check_settings(request.settings, request.subset)
    if protocol is None:
        protocol = load_protocol(request.protocol, request.database)
    files = diarization_references(protocol, request.protocol, request.subset)
    rttms = _rttm_paths(request.extraction, files, request.settings)
    development = _development(request, protocol) if request.settings.num_speakers == "tuned" else None
    return PreparedCheck(request, files, rttms, development)


def run_check(check: PreparedCheck, progress: Progress | None = None) -> DiarizationReport:
    """Cluster, score and write ``{uri}.rttm`` for every file of the check's subset (``progress``: where
    the clustering's counts go, the terminal's when left out).

    Raises
    ------
    SpkembError
        Not an extraction folder, or embeddings missing for a file; nothing is written then.
    """
    request = check.request
    precomputed = Precomputed(request.extraction.root)
    progress = progress or Progress()
    items = _prepare(precomputed, check.files, request.subset, progress)
    threshold = tuned_on = None
    if check.development is not None:
        threshold, _ = tune_threshold(_prepare(precomputed, check.development, "development", progress),
                                      request.settings, said=say)
        tuned_on = f"{request.protocol}.development"
    results, total = score(items, request.settings, threshold)
    for folder in dict.fromkeys(path.parent for path in check.rttms.values()):
        sweep_dead_temps(folder)  # the half-written RTTMs of a diarize killed as it wrote them
    for result in results:
        check.rttms[result.uri].parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(check.rttms[result.uri], result.hypothesis.to_rttm())
    epoch = precomputed.metadata.get("epoch")
    return DiarizationReport(request, results, total, threshold, tuned_on, check.rttms,
                             int(epoch) if isinstance(epoch, int) else None)


def request_from_args(args: ApplyRequest | DiarizeRequest, extraction: ExtractionDir) -> DiarizationJob:
    """The check that ``diarize`` (or ``apply --diarize``) was asked for, on ``extraction``."""
    settings = DerSettings(collar=args.collar, skip_overlap=args.skip_overlap, num_speakers=args.num_speakers)
    return DiarizationJob(extraction, args.protocol, args.subset, settings, args.database, args.db)


def cmd_diarize(args: DiarizeRequest) -> int:
    """``spkemb-engine diarize VAL_DIR/apply/EPOCH PROTOCOL``: see the module docstring."""
    from engine.store import default_db_path, is_network_fs, open_store

    folder = ExtractionDir(Path(args.extraction))
    if not folder.root.is_dir():
        raise SpkembError(f"{folder.root} is not a directory: pass the folder `spkemb-engine apply` wrote "
                          f"({EXTRACTION_DIR_SHAPE})")
    report = run_check(prepare_check(request_from_args(args, folder)))
    for line in report.lines():
        out(line)
    db = default_db_path(args.db)
    if is_network_fs(db):
        say(f"diarize: {db} is on a network filesystem: not recorded (the RTTMs are written)")
        return 0
    with open_store(db) as store:
        store.add_diarization(None, **report.record())
    out(f"recorded in {db}")
    return 0
