"""What ``spkemb-engine export`` writes, read back without torch: names and metadata of an exported network.

An exported file is ONNX (metadata in the model's ``metadata_props``) or TorchScript (a zip
archive; metadata in ``extra/metadata.json``); see :mod:`engine.extraction.export`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from engine.errors import SpkembError

INPUT, OUTPUT = "waveform", "embedding"
#: the name of the metadata file inside a TorchScript archive
TORCHSCRIPT_METADATA = "metadata.json"
METADATA_FORMAT = "1"
#: what ``export_metadata`` writes, each a text; readers index them all
METADATA_KEYS = ("spkemb.format", "spkemb.config", "spkemb.sample_rate", "spkemb.duration", "spkemb.dimension",
                 "spkemb.min_samples", "spkemb.checkpoint", "spkemb.checkpoint_sha256", "spkemb.epoch",
                 "spkemb.version")
#: far more than the metadata export writes (the config is the largest part): a zip's member is
#: refused past it before it is inflated
MAX_METADATA_BYTES = 1 << 20


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files; ONNX models are protobuf."""
    return zipfile.is_zipfile(path)


def _torchscript_metadata(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(f"/extra/{TORCHSCRIPT_METADATA}")]
        if not names:
            return {}
        size = archive.getinfo(names[0]).file_size
        if size > MAX_METADATA_BYTES:
            raise SpkembError(f"{path}: its {names[0]} inflates to {size:,} bytes, more than spkemb-engine export "
                              "writes: this is no exported network; export it again")
        return json.loads(archive.read(names[0]))


def _onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    # an export is one self-contained file; a tensor stored elsewhere would make onnxruntime open
    # whatever path the file names (outside its folder too)
    external = next((t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL),
                    None)
    if external is not None:
        raise SpkembError(f"{path} keeps tensor {external} in another file: spkemb exports are one "
                          "self-contained file; export the network again with `spkemb-engine export`")
    return {p.key: p.value for p in model.metadata_props}


def read_metadata(path: Path) -> dict[str, str]:
    """The ``spkemb.*`` metadata of an exported file (ONNX or TorchScript).

    Raises
    ------
    SpkembError
        When the file is missing, not a model, or was not written by ``spkemb-engine export``.
    """
    path = Path(path)
    if not path.is_file():
        raise SpkembError(f"{path} does not exist: write it with `spkemb-engine export VAL_DIR -o {path}`")
    try:
        metadata = _torchscript_metadata(path) if is_torchscript(path) else _onnx_metadata(path)
    except SpkembError:
        raise
    except Exception as e:  # onnx, zipfile and json raise unrelated types for a damaged file
        raise SpkembError(f"{path} is not a readable ONNX or TorchScript model ({e}): export it again") from e
    if not isinstance(metadata, dict) or metadata.get("spkemb.format") != METADATA_FORMAT:
        raise SpkembError(f"{path} was not written by `spkemb-engine export` (no spkemb metadata): "
                          "export the network again with it")
    lacking = next((key for key in METADATA_KEYS if not isinstance(metadata.get(key), str)), None)
    if lacking is not None:
        raise SpkembError(f"{path} has no {lacking} text in its metadata, which `spkemb-engine export` writes: "
                          "export the network again with it")
    return metadata
