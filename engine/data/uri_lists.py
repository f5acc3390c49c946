"""Uris of uri lists and trial lists that would take their audio path out of the database's folder.

pyannote.database puts a uri into the audio path template of database.yml as it is: ``../../x``
reads, and scores, a file outside the corpus, and ``/tmp/x`` gives ``wav//tmp/x.wav``. Such a uri is
refused by the rule that keeps ``apply``'s ``{uri}.npy`` inside its folder
(``engine.safe_paths.unsafe_reason``), named by ``FILE:LINE``, before any file is read or embedded.
torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import ProtocolError
from engine.safe_paths import SAFE, unsafe_reason

#: characters a line needs for ``unsafe_reason`` to refuse it, but for '/': a dot, a tilde, NUL, and the
#: blanks ``strip`` takes off (a list that is not ASCII is gone through line by line)
_SUSPECT_CHARS = ".~\x00 \t\x0b\x0c\r\x1c\x1d\x1e\x1f"
#: (path, size, mtime) of the lists found fine by this process: a command checks its subset more than once
_FINE: set[tuple[str, int, int]] = set()


def _suspect(text: str) -> bool:
    """Whether a line of ``text`` may be refused by ``uri_problem``: a list of a million uris is searched
    once, a character or a pair at a time (0.1 s for VoxCeleb2's 1.09 M lines; a regular expression took
    0.5 s), and only a list that may is gone through line by line."""
    if not text.isascii() or any(c in text for c in _SUSPECT_CHARS):
        return True
    return text.startswith("/") or text.endswith("/") or "//" in text or "\n/" in text or "/\n" in text


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be put into an audio path template safely, or None when it can (a blank
    line names no file)."""
    return unsafe_reason(uri) if uri else None


def uri_refusal(where: str, uri: str, reason: str) -> ProtocolError:
    """The error of ``uri`` at ``where`` (``FILE:LINE``, or the trial of a protocol)."""
    return ProtocolError(f"{where}: uri {uri!r} is refused: {reason}, so the audio path template of "
                         "database.yml would make it a file outside the database's folder — write the uri "
                         f"relative to that folder (a uri must be {SAFE}), or delete the line")


def check_uri_list(path: str | os.PathLike[str], what: str = "") -> None:
    """Refuse the first uri of the uri list ``path`` that ``uri_problem`` refuses.

    ``what``: the protocol and subset, for the message. A list that is missing or no regular file is
    left to pyannote.database, which names it when it reads it.

    Raises
    ------
    ProtocolError
        Naming ``FILE:LINE``, the uri, why and the fix.
    """
    try:
        st = os.stat(path)
        seen = (str(path), st.st_size, st.st_mtime_ns)
        if not stat.S_ISREG(st.st_mode) or seen in _FINE:
            return
        # read as pyannote.database does (text, universal newlines), so that the lines are its lines
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return
    if _suspect(text):
        for number, line in enumerate(text.split("\n"), 1):
            uri = line.strip()
            reason = uri_problem(uri)
            if reason is not None:
                where = f"{Path(path)}:{number}" + (f" ({what})" if what else "")
                raise uri_refusal(where, uri, reason)
    _FINE.add(seen)
