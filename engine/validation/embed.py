"""``spkemb-engine embed VAL_DIR RECORDING... -o OUTPUT``: embeddings of recordings of one's own, in one file.

What a back-end of one's own (PLDA, clustering, a plot) starts from: one embedding per recording,
made by the checkpoint VAL_DIR points at (or ``--epoch``) as ``validate`` embeds a trial's files, so
that the cosine of two rows is the score ``verify`` gives the pair. The recordings are the
arguments, then those of ``--list`` (one path a line). OUTPUT is a NumPy ``.npz`` holding
``embeddings`` (float32, one row per recording, in order), ``paths`` (the recordings as given) and
``metadata`` (a JSON string); ``np.load`` reads it with ``allow_pickle=False``. An OUTPUT ending in
``.ark`` is a Kaldi archive instead, keyed by the recordings as given, with its ``.scp`` index and
the metadata in ``.json`` beside it (``engine.validation.kaldi_archive``). What is written is
written atomically: an OUTPUT that was there stays whole until the new one replaces it. No run is
recorded.

Torch is imported once the folder, the output's place, the list and every recording have been
checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO

import numpy as np

from engine.atomic import atomic_write_together
from engine.console import say
from engine.errors import SpkembError
from engine.layout import CheckpointName, ValidationDir
from engine.records import checkpoint_title
from engine.regular_files import FileTooLarge, NotRegularFile, read_regular
from engine.requests import EmbedRequest
from engine.validation.kaldi_archive import check_keys, index_text, write_archive
from engine.validation.recordings import (
    Embedded,
    check_recordings,
    embed_recordings,
    embeds_whole_files,
    present_checkpoint,
    shorter_than_half_a_window,
)
from engine.validation.val_dir import given_val_dir
from engine.version import VERSION

#: a list of a million recordings is some 100 MB of paths
LIST_LIMIT = 512 * 2**20
#: ``metadata["format"]``: what a reader of OUTPUT may rely on
FORMAT = "spkemb-embeddings/1"


def cmd_embed(args: EmbedRequest) -> int:
    """See the module docstring."""
    val = given_val_dir(args.val_dir)
    name, checkpoint = present_checkpoint(val, args.epoch)
    recordings = [*args.recordings, *(listed_recordings(args.list_file) if args.list_file else [])]
    if not recordings:
        raise SpkembError("no recording to embed: name audio files after VAL_DIR, or pass --list FILE")
    outputs = output_files(args.output, [*recordings, *([args.list_file] if args.list_file else [])])
    if len(outputs) > 1:
        check_keys(recordings)
    seconds = check_recordings(recordings)
    whole = embeds_whole_files(val)
    say(f"embed: {len(recordings):,} recording(s) with {checkpoint_title(name)} of {val.root} "
        f"({'whole-file' if whole else 'window-mean'} embeddings, as validate embeds a trial's files)")
    embedded = embed_recordings(recordings, checkpoint, whole_file=whole, device=args.device, batch=args.batch,
                                db=args.db, trust_checkpoint=args.trust_checkpoint)
    short = shorter_than_half_a_window(seconds, embedded.window)
    if short:
        say(f"embed: {len(short):,} recording(s) last under half of the network's {embedded.window:g} s window "
            f"(the first: {short[0]}, {seconds[short[0]]:.2f} s): their embeddings say little")
    metadata = json.dumps(_metadata(val, name, embedded, whole))
    rows = embedded.rows.astype(np.float32)
    if len(outputs) == 1:
        def write_npz(f: IO) -> None:
            np.savez(f, embeddings=rows, paths=np.array(recordings, dtype=str), metadata=np.array(metadata))
        atomic_write_together([(outputs[0], write_npz, "wb")])
    else:
        archive, index, about = outputs
        atomic_write_together([(archive, lambda f: write_archive(f, recordings, rows), "wb"),
                               (index, lambda f: f.write(index_text(recordings, rows.shape[1], archive)), "w"),
                               (about, lambda f: f.write(metadata + "\n"), "w")])
    written = outputs[0] if len(outputs) == 1 else f"{outputs[0]}, {outputs[1]} and {outputs[2]} (their metadata)"
    say(f"embed: {rows.shape[0]:,} x {rows.shape[1]} embeddings written to {written}")
    return 0


def listed_recordings(path: str) -> list[str]:
    """The recordings ``--list`` names: one path a line, surrounding blanks left out, blank lines and
    lines starting with ``#`` skipped."""
    try:
        data = read_regular(path, LIST_LIMIT)
    except FileNotFoundError:
        raise SpkembError(f"--list {path}: no such file; fix the path") from None
    except (IsADirectoryError, NotRegularFile):
        raise SpkembError(f"--list {path} is not a regular file (a folder, pipe or device): name a file "
                          "of recordings, one path a line") from None
    except FileTooLarge:
        raise SpkembError(f"--list {path} is larger than {LIST_LIMIT // 2**20} MiB: no list of recordings is; "
                          "split it into several runs of embed") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise SpkembError(f"--list {path}: line {line} is not UTF-8 text: write the list as UTF-8, "
                          "one path a line") from None
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def output_files(given: str, inputs: list[str]) -> list[Path]:
    """The files OUTPUT names, checked before any work: OUTPUT, and for a Kaldi archive (``.ark``)
    its ``.scp`` and ``.json`` beside it; each a file in a folder that exists, and none of the inputs."""
    output = Path(given)
    outputs = [output]
    if output.suffix == ".ark":
        outputs += [output.with_suffix(".scp"), output.with_suffix(".json")]
    if not output.parent.is_dir():
        raise SpkembError(f"-o {given}: folder {output.parent} does not exist: create it first, or fix the path")
    for path in outputs:
        what = f"-o {given}" if path == output else f"-o {given}: {path}, written beside it,"
        if path.is_dir():
            fix = f"name a file in it (such as {output / 'embeddings.npz'})" if path == output else \
                "move it away, or name another OUTPUT"
            raise SpkembError(f"{what} is a folder: {fix}")
        if path.exists() and any(_same_file(path, read) for read in inputs):  # else no input is it
            raise SpkembError(f"{what} is one of the files embed reads: name another OUTPUT")
    return outputs


def _same_file(a: Path, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # a recording that is not there: said by its own check
        return False


def _metadata(val: ValidationDir, name: CheckpointName, embedded: Embedded, whole: bool) -> dict[str, object]:
    return {"format": FORMAT, "val_dir": str(val.root.resolve()), "checkpoint": str(embedded.checkpoint.resolve()),
            "checkpoint_sha256": embedded.sha256, "epoch": name,
            "embedding": "whole-file" if whole else "window-mean", "window": embedded.window,
            "step": embedded.step, "sample_rate": embedded.sample_rate, "dimension": int(embedded.rows.shape[1]),
            "architecture": embedded.architecture, "spkemb": VERSION}
