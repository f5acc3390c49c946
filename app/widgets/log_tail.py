"""The tail of a run's log file, followed from a thread worker."""

from __future__ import annotations

import os
from pathlib import Path

from textual import work
from textual.widgets import Log

from app.data.messages import LogLines
from engine.regular_files import open_regular

FIRST_READ = 64 * 1024
MAX_READ = 1024 * 1024


def _tail(path: str, offset: int | None) -> tuple[bytes, int]:
    """(bytes of ``path`` from ``offset``, at most ``MAX_READ`` of them; that offset), or the last
    ``FIRST_READ`` bytes when ``offset`` is None or past the end (a file written anew).

    Raises
    ------
    OSError
        When ``path`` cannot be opened, or is not a regular file (a pipe would block this worker).
    """
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if offset is None or offset > size:
            offset = max(0, size - FIRST_READ)
        return os.pread(fd, MAX_READ, offset), offset
    finally:
        os.close(fd)


class LogTail(Log):
    """Follows a log file: reads only what was appended since the last look."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; min-height: 5; border: round $primary-darken-2; }
    """

    def __init__(self, path: str | Path | None = None, interval: float = 1.0, **kwargs) -> None:
        super().__init__(max_lines=1000, **kwargs)
        self.path = str(path) if path else None
        self.interval = interval
        self._offset: int | None = None
        self._partial = ""
        self._error: str | None = None
        self._missing_said = False
        #: the view is at the end: a resize keeps it there (Log follows only a view at the end)
        self._following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y

    def on_resize(self) -> None:
        if self._following:  # a shorter panel leaves the view above the end, where no new line moves it
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)

    def on_mount(self) -> None:
        self.border_title = "log"
        self.follow(self.path)
        self.set_interval(self.interval, self._poll)

    def follow(self, path: str | Path | None) -> None:
        """Start following another file (or none)."""
        path = str(path) if path else None
        if path == self.path and (self._offset is not None or self._missing_said):
            return  # followed already (a file not there yet is looked for by the poll)
        self.path, self._offset, self._partial, self._error = path, None, "", None
        self._missing_said = False
        self.clear()
        if path is None:
            self.write_line("(no log for this run)")
        else:
            self.border_title = f"log  {Path(path).name}"
            self._poll()

    def _poll(self) -> None:
        if self.path:
            self._read(self.path, self._offset)

    @work(thread=True, exclusive=True, group="log-tail")
    def _read(self, path: str, offset: int | None) -> None:
        try:
            data, offset = _tail(path, offset)
        except FileNotFoundError:
            self.post_message(LogLines(path, [], missing=True))
            return
        except OSError as e:
            self.post_message(LogLines(path, [], error=f"cannot read {path}: {e.strerror or e}"))
            return
        self._offset = offset + len(data)
        text = self._partial + data.decode("utf-8", errors="replace").replace("\r", "\n")
        lines = text.split("\n")
        self._partial = lines.pop()
        if lines:
            self.post_message(LogLines(path, lines))

    def on_log_lines(self, message: LogLines) -> None:
        message.stop()
        if message.path != self.path:
            return
        if message.missing:
            if not self._missing_said:  # once: a command just launched writes it in a moment
                self._missing_said = True
                self.write_line(f"(no {Path(message.path).name} yet: the TUI writes it for the commands it starts; "
                                "a command started by hand writes to its own terminal)")
            return
        if message.error:
            if message.error != self._error:
                self._error = message.error
                self.write_line(f"[log unreadable] {message.error}")
                self.app.notify(message.error, severity="error")
            return
        self.write_lines([line for line in message.lines if line.strip()])
