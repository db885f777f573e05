"""Frame sources: the newest-frame grabber drops stale frames; video loop; folder; backoff."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_image.config import Backoff, SourceConfig
from edge_image.sources import (
    CaptureSource,
    FolderSource,
    Frame,
    LatestFrameGrabber,
    SourceEndedError,
    SourceError,
    make_source,
)
from tests.edge.helpers import write_images


class FastCamera:
    """A live source producing a frame every 2 ms; fails after ``fail_after`` frames."""

    def __init__(self, fail_after: int = 10**9) -> None:
        self.count = 0
        self.fail_after = fail_after
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    def read(self) -> Frame:
        time.sleep(0.002)
        if self.count >= self.fail_after:
            raise SourceError("camera unplugged")
        self.count += 1
        return Frame(np.zeros((2, 2, 3), np.uint8), self.count, time.monotonic())

    def close(self) -> None:
        self.closed = True


def test_grabber_returns_only_the_newest_frame() -> None:
    camera = FastCamera()
    grabber = LatestFrameGrabber(camera, timeout=2.0)
    grabber.open()
    seen = []
    for _ in range(5):
        time.sleep(0.05)  # a slow consumer: ~25 frames arrive meanwhile
        frame = grabber.read()
        seen.append((frame.index, camera.count))
    grabber.close()
    assert camera.closed
    indices = [i for i, _ in seen]
    assert indices == sorted(set(indices))
    assert all(produced - index <= 2 for index, produced in seen)  # never more than a frame behind
    assert grabber.dropped > 50


def test_grabber_reraises_source_failure_and_times_out() -> None:
    grabber = LatestFrameGrabber(FastCamera(fail_after=3), timeout=1.0)
    grabber.open()
    with pytest.raises(SourceError, match="unplugged"):
        for _ in range(10):
            grabber.read()
    grabber.close()

    class Stalled(FastCamera):
        def read(self) -> Frame:  # a stream that stops delivering without an error
            time.sleep(0.05)
            return Frame(np.zeros((2, 2, 3), np.uint8), 0, time.monotonic())  # never newer

    stalled = LatestFrameGrabber(Stalled(), timeout=0.3)
    stalled.open()
    with pytest.raises(SourceError, match=r"no frame for 0\.3 s"):
        stalled.read()
    stalled.close()


def make_video(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def test_video_loops_and_ends(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.avi", 4)
    looped = CaptureSource(SourceConfig("video", path=video, loop=True))
    looped.open()
    assert [looped.read().index for _ in range(10)] == list(range(1, 11))
    video.unlink()
    with pytest.raises(SourceError, match=r"v\.avi: video file not found$"):
        for _ in range(10):
            looped.read()
    looped.close()


def test_unreadable_video_path_is_a_source_error_not_a_crash(tmp_path: Path) -> None:
    # root reads any file, so stand in for "Permission denied" with another OSError
    source = CaptureSource(SourceConfig("video", path=tmp_path))
    with pytest.raises(SourceError, match=r"cannot read video file \(Is a directory\)"):
        source.open()
    once = CaptureSource(SourceConfig("video", path=make_video(tmp_path / "w.avi", 3)))
    once.open()
    for _ in range(3):
        once.read()
    with pytest.raises(SourceEndedError):
        once.read()
    once.close()


def test_folder_source_order_skip_and_loop(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 3)
    (folder / "zz-broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("ignored")
    source = FolderSource(SourceConfig("folder", path=folder, loop=True))
    source.open()
    frames = [source.read() for _ in range(7)]
    assert [f.index for f in frames] == list(range(1, 8)) and frames[0].image.shape == (240, 320, 3)
    with pytest.raises(SourceError, match="not found"):
        FolderSource(SourceConfig("folder", path=tmp_path / "none")).open()


def test_camera_and_stream_are_wrapped_and_fail_cleanly() -> None:
    assert isinstance(make_source(SourceConfig("camera", index=63)), LatestFrameGrabber)
    source = make_source(SourceConfig("camera", index=63))
    with pytest.raises(SourceError, match="cannot open camera 63"):
        source.open()
    source.close()


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [Backoff(0.5, 2.0, 30.0).delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
