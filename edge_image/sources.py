"""Frame sources: V4L2 camera, video file, RTSP/HTTP stream, image folder.

Every source has ``open()``, ``read() -> Frame`` and ``close()``. ``read`` raises
:class:`SourceError` when the device or stream fails (the pipeline reconnects with backoff)
and :class:`SourceEndedError` when a finite source (video or folder without ``loop``) is done.
Live sources (camera, stream) are wrapped in :class:`LatestFrameGrabber`, a thread that
reads continuously and keeps only the newest frame, so inference never works on a stale one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge_image.config import SourceConfig

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class SourceError(Exception):
    """The source failed (camera unplugged, stream down, file gone); reconnecting may help."""


class SourceEndedError(Exception):
    """A finite source has no more frames."""


@dataclass(frozen=True)
class Frame:
    """One BGR ``uint8`` image (H, W, 3), its sequence number and capture time (``time.monotonic``)."""

    image: np.ndarray
    index: int
    captured: float


class Source(Protocol):
    """What the pipeline reads from."""

    def open(self) -> None: ...
    def read(self) -> Frame: ...
    def close(self) -> None: ...


class CaptureSource:
    """A ``cv2.VideoCapture`` on a V4L2 camera index, a video file, or a stream URL.

    ``loop=True`` rewinds a video file at its end (by reopening, which also notices a file
    that was deleted or replaced). A failed read on a camera or stream is a :class:`SourceError`.
    """

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._cap: cv2.VideoCapture | None = None
        self._count = 0

    def _open_capture(self) -> cv2.VideoCapture:
        c = self.config
        if c.kind == "camera":
            cap = cv2.VideoCapture(c.index, cv2.CAP_V4L2)
        elif c.kind == "stream":
            cap = cv2.VideoCapture(c.url, cv2.CAP_FFMPEG)
        else:
            if c.path is None:
                raise SourceError("video source has no path")
            try:
                with c.path.open("rb"):  # existence and permission, named in one line
                    pass
            except FileNotFoundError:
                raise SourceError(f"{c.path}: video file not found") from None
            except OSError as exc:
                raise SourceError(f"{c.path}: cannot read video file ({exc.strerror})") from None
            cap = cv2.VideoCapture(str(c.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {c.describe()}")
        if c.width and c.height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        if c.kind == "camera":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def open(self) -> None:
        self.close()
        self._cap = self._open_capture()

    def read(self) -> Frame:
        if self._cap is None:
            raise SourceError(f"{self.config.describe()} is not open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.config.kind != "video":
                raise SourceError(f"read failed on {self.config.describe()}")
            if not self.config.loop:
                raise SourceEndedError(f"end of {self.config.describe()}")
            self.open()  # rewind; raises SourceError if the file is gone
            ok, image = self._cap.read()
            if not ok or image is None:
                raise SourceError(f"{self.config.describe()}: no frames after rewinding")
        self._count += 1
        return Frame(image, self._count, time.monotonic())

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderSource:
    """Images in a folder, in name order; rescanned at the end (``loop`` repeats, else ends)."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._files: list[Path] = []
        self._pos = 0
        self._count = 0

    def _scan(self) -> list[Path]:
        folder = self.config.path
        if folder is None or not folder.is_dir():
            raise SourceError(f"{folder}: image folder not found")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def open(self) -> None:
        self._files = self._scan()
        self._pos = 0
        if not self._files:
            raise SourceError(f"{self.config.path}: no images ({', '.join(IMAGE_SUFFIXES)})")

    def read(self) -> Frame:
        while True:
            if self._pos >= len(self._files):
                if not self.config.loop:
                    raise SourceEndedError(f"end of {self.config.describe()}")
                self.open()
            path = self._files[self._pos]
            self._pos += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                self._count += 1
                return Frame(image, self._count, time.monotonic())
            log.warning("%s: not a readable image, skipped", path)

    def close(self) -> None:
        self._files = []


class LatestFrameGrabber:
    """Wrap a live source: a thread reads as fast as the device delivers, keeping only the newest.

    ``read`` blocks until a frame newer than the last one returned arrives (or ``timeout``
    seconds pass → :class:`SourceError`), so stale frames are dropped, never queued. A read
    error in the thread is re-raised by the next ``read``.
    """

    def __init__(self, inner: Source, timeout: float = 5.0) -> None:
        self.inner = inner
        self.timeout = timeout
        self.dropped = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._error: BaseException | None = None
        self._returned = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        self.close()
        self.inner.open()
        self._stop.clear()
        self._error = None
        self._latest = None
        self._returned = 0
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.inner.read()
            except (SourceError, SourceEndedError) as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                if self._latest is not None and self._latest.index > self._returned:
                    self.dropped += 1
                self._latest = frame
                self._cond.notify_all()

    def read(self) -> Frame:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                if self._latest is not None and self._latest.index > self._returned:
                    self._returned = self._latest.index
                    return self._latest
                if self._error is not None:
                    raise self._error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SourceError(f"no frame for {self.timeout:g} s")
                self._cond.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1.0)
            self._thread = None
        self.inner.close()


def make_source(config: SourceConfig) -> Source:
    """The source for ``config``; live kinds come wrapped in a :class:`LatestFrameGrabber`."""
    if config.kind == "folder":
        return FolderSource(config)
    capture = CaptureSource(config)
    return LatestFrameGrabber(capture) if config.live else capture
