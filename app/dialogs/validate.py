"""The Validate dialog: trial subset, how often, raw or AS-norm scores, and the calibration list
(``spkemb-engine validate``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Label, Select, Static

from app.dialogs.form_rows import FormDialog, form_end, labelled, whole_number
from app.launching.commands import ScoreNorm, ValidationChoice
from app.views.plain import plain
from engine.requests.validation import MIN_COHORT_SIZE

#: the score back-ends a validation can record (docs/validation.md, "Score normalisation")
SCORE_NORMS = [("raw cosine scores", "none"), ("raw and AS-norm scores (--score-norm asnorm)", "asnorm")]


class ValidateDialog(FormDialog[ValidationChoice | None]):
    """Prefilled with the run's last validation, so that `v` then Enter validates as before."""


    def __init__(self, last: ValidationChoice) -> None:
        super().__init__()
        self.last = last

    def compose(self) -> ComposeResult:
        norm = self.last.score_norm
        with Vertical():
            yield Label("Validate the run's checkpoints (spkemb-engine validate)")
            yield labelled("trial subset", Input(self.last.subset, id="subset"))
            yield labelled("every N epochs", Input(str(self.last.every), id="every", type="integer"))
            yield labelled("scores", Select(SCORE_NORMS, value="asnorm" if norm else "none",
                                            allow_blank=False, id="norm"))
            cohort = norm or ScoreNorm()
            yield labelled("AS-norm cohort speakers", Input(str(cohort.cohort_size), id="cohort-size", type="integer"))
            yield labelled("AS-norm files per speaker", Input(str(cohort.cohort_files), id="cohort-files",
                                                              type="integer"))
            yield labelled("calibrate on subset", Input(self.last.calibration or "", id="calibration",
                                                        placeholder="none (e.g. development)"))
            yield from form_end("Validate")

    def submit(self) -> None:
        error = self.query_one("#error", Static)
        every = whole_number(self.query_one("#every", Input).value, "every N epochs", error)
        size = whole_number(self.query_one("#cohort-size", Input).value, "cohort speakers", error,
                            least=MIN_COHORT_SIZE)
        files = whole_number(self.query_one("#cohort-files", Input).value, "files per speaker", error)
        if every is None or size is None or files is None:
            return
        asnorm = self.query_one("#norm", Select).value == "asnorm"
        subset = self.query_one("#subset", Input).value.strip() or "development"
        calibration = self.query_one("#calibration", Input).value.strip() or None
        if calibration == subset:
            error.update(plain(f"calibrate on another subset than {subset}: a calibration judged on the trials "
                               "it was trained on flatters itself"))
            return
        self.dismiss(ValidationChoice(subset, every, ScoreNorm(size, files) if asnorm else None, calibration))
