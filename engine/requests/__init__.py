"""What each command is asked to do: one frozen, typed request per ``spkemb-engine`` command.

``engine.cli`` turns the command line into one of these; nothing below it sees argparse. The
field names are the command's option names (``--log-every`` -> ``log_every``), so a request reads
like the command line that made it. Torch-free. One module per family of commands, as
``engine.arguments`` holds their options.
"""

from engine.requests.base import R, Request
from engine.requests.extraction import MIN_STEP, ApplyRequest, DiarizationOptions, DiarizeRequest, ExportRequest
from engine.requests.training import QueueRequest, SbatchRequest, SweepRequest, TrainOptions, TrainRequest
from engine.requests.validation import (
    AverageRequest,
    CleanRequest,
    EmbedRequest,
    PickRequest,
    ValidateRequest,
    VerifyRequest,
)
from engine.requests.workspace import (
    ConfigCheckRequest,
    ConfigLargeMarginRequest,
    ConfigTemplateRequest,
    DemoRequest,
    ImportRequest,
    ModelSummaryRequest,
    ReportRequest,
    RunsRequest,
    TagRequest,
)

__all__ = ["MIN_STEP", "R", "ApplyRequest", "AverageRequest", "CleanRequest", "ConfigCheckRequest",
           "ConfigLargeMarginRequest", "ConfigTemplateRequest", "DemoRequest", "DiarizationOptions", "DiarizeRequest",
           "EmbedRequest", "ExportRequest", "ImportRequest", "ModelSummaryRequest", "PickRequest", "QueueRequest",
           "ReportRequest", "Request", "RunsRequest", "SbatchRequest", "SweepRequest", "TagRequest", "TrainOptions",
           "TrainRequest", "ValidateRequest", "VerifyRequest"]
