"""Small forms for the run actions that take a choice: pick an epoch, extract embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from app.data.gpus import device_options
from app.data.protocols_list import default_extract, protocols
from app.dialogs.form_rows import FormDialog, form_end, labelled
from app.launching.commands import DiarizationSettings
from app.widgets.tick_box import TickBox
from engine.layout import PARAMS


def _epoch_label(epoch: int | str, eer: float | None) -> str:
    name = f"epoch {epoch}" if isinstance(epoch, int) else str(epoch)
    return name if eer is None else f"{name}: EER {100 * eer:.2f} %"


class PickDialog(FormDialog[int | str | bool]):
    """Which epoch params.yml should point at: the lowest EER (the default), a chosen epoch or
    validated averaged weights (``avg-top5``)."""

    cancelled = False

    def __init__(self, epochs: list[tuple[int | str, float | None]]) -> None:
        """``epochs``: each validated epoch (or averaged weights) with its EER."""
        super().__init__()
        self.epochs = epochs

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Pick the epoch to use ({PARAMS} and the database)")
            yield Select([("lowest EER", "best")] + [(_epoch_label(e, eer), str(e)) for e, eer in self.epochs],
                         value="best", allow_blank=False, id="epoch")
            with Horizontal():
                yield Button("Pick", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def submit(self) -> None:
        value = self.query_one("#epoch", Select).value
        value = str(value)
        self.dismiss(True if value == "best" else int(value) if value.isdigit() else value)


#: the ways ``apply`` can compute the windows' embeddings (docs/extraction.md, "Three extraction paths")
EXTRACTION_PATHS = [("exact (default)", "exact"), ("shared: frame-level layers once per file, approximate", "shared"),
                    ("onnxruntime: the network exported on the fly", "onnxruntime")]


#: how many clusters the diarization check cuts each file into (``--num-speakers``)
NUM_SPEAKERS = [("the reference's number (oracle)", "oracle"), ("a threshold tuned on development", "tuned")]


@dataclass(frozen=True)
class ExtractChoice:
    """What the Extract dialog asks ``spkemb-engine apply`` for."""

    protocol: str
    subset: str
    step: float
    epoch: int | None
    device: str
    path: str
    diarize: bool
    diarization: DiarizationSettings = DiarizationSettings()


class ExtractDialog(FormDialog[ExtractChoice | None]):
    """Protocol, subset, step, epoch, device and path of an extraction (``spkemb-engine apply``)."""

    def __init__(self, database_yml: Path | None, device: str | None = None) -> None:
        super().__init__()
        self.database_yml = database_yml
        #: the device offered first: the training run's, when this machine still has it
        self.device = device or "cpu"

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Extract embeddings with a sliding window (spkemb-engine apply)")
            yield labelled("protocol", Select([], prompt="protocol (loading…)", id="protocol"))
            yield labelled("subset", Input("test", placeholder="subset", id="subset"))
            yield labelled("step (fraction of window)", Input("0.1", placeholder="e.g. 0.1", id="step", type="number"))
            yield labelled("epoch", Input("", placeholder="blank: the picked epoch", id="epoch", type="integer"))
            yield labelled("device", Select([("cpu", "cpu")], value="cpu", allow_blank=False, id="device"))
            yield labelled("path", Select(EXTRACTION_PATHS, value="exact", allow_blank=False, id="path"))
            yield TickBox("then the diarization check (DER, RTTMs)", False, id="diarize")
            yield labelled("DER collar (s)", Input("0", placeholder="0 (0.5 = NIST's 0.25 s)", id="collar",
                                                   type="number"))
            yield TickBox("leave overlapped speech out of the DER", False, id="skip-overlap")
            yield labelled("speakers per file", Select(NUM_SPEAKERS, value="oracle", allow_blank=False,
                                                       id="num-speakers"))
            yield from form_end("Extract")

    def on_mount(self) -> None:
        self._load()

    @work(thread=True)
    def _load(self) -> None:
        self.app.call_from_thread(self._fill_devices, device_options())
        try:
            names = protocols(self.database_yml)
        except Exception as e:  # noqa: BLE001 - shown in the dialog
            self.app.call_from_thread(self.query_one("#error", Static).update, str(e))
            return
        self.app.call_from_thread(self._fill, names)

    def _fill_devices(self, options: list[tuple[str, str]]) -> None:
        select = self.query_one("#device", Select)
        select.set_options(options)
        values = [value for _, value in options]
        wanted = "cuda:0" if self.device == "cuda" else self.device
        select.value = wanted if wanted in values else "cpu"

    def _fill(self, names: list[str]) -> None:
        select = self.query_one("#protocol", Select)
        select.set_options([(n, n) for n in names])
        default = default_extract(names)
        if default:
            select.value = default

    def on_select_changed(self, event: Select.Changed) -> None:
        # a speaker diarization protocol has reference turns to score the embeddings against
        if event.select.id == "protocol" and event.value is not Select.NULL:
            self.query_one("#diarize", Checkbox).value = ".SpeakerDiarization." in str(event.value)

    def submit(self) -> None:
        protocol = self.query_one("#protocol", Select).value
        error = self.query_one("#error", Static)
        if protocol is Select.NULL:
            error.update("choose a protocol")
            return
        try:
            step = float(self.query_one("#step", Input).value)
        except ValueError:
            error.update("step: a number such as 0.1")
            return
        try:
            collar = float(self.query_one("#collar", Input).value or 0)
        except ValueError:
            error.update("collar: seconds, such as 0 or 0.5")
            return
        if collar < 0:
            error.update("collar: seconds, 0 or more")
            return
        epoch = self.query_one("#epoch", Input).value.strip()
        subset = self.query_one("#subset", Input).value.strip() or "test"
        diarization = DiarizationSettings(collar=collar, skip_overlap=self.query_one("#skip-overlap", Checkbox).value,
                                          num_speakers=str(self.query_one("#num-speakers", Select).value))
        self.dismiss(ExtractChoice(protocol=str(protocol), subset=subset, step=step,
                                   epoch=int(epoch) if epoch else None,
                                   device=str(self.query_one("#device", Select).value),
                                   path=str(self.query_one("#path", Select).value),
                                   diarize=self.query_one("#diarize", Checkbox).value,
                                   diarization=diarization))
