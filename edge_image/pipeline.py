"""The detection loop: source → preprocess → backend → decode → metrics, outputs, live view.

Runs in one thread (:meth:`Pipeline.run`) so the backend is only ever touched from there.
Failures are contained:

- source read fails → close it, count ``edge_reconnects_total{component="source"}``, retry
  with exponential backoff (``source.reconnect``) until it opens again;
- backend raises :class:`BackendError` (stick unplugged) → close it and reopen the device with
  backoff (``backend.reopen``);
- a reload (``/api/reload`` or the bundle's ``manifest.json`` changing) verifies the new
  bundle's checksums first; a refused bundle is logged and counted and the previous model
  keeps serving.

``heartbeat`` advances at least once a second while the loop is alive (also while waiting
to reconnect), which is what the systemd watchdog pings are tied to.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_image.backends import Backend, BackendError, open_backend, resolve_kind
from edge_image.config import Backoff, ServiceConfig
from edge_image.contract.decode import Detections
from edge_image.contract.errors import UserError
from edge_image.contract.manifest import MANIFEST_NAME, Bundle, load_bundle
from edge_image.contract.signing import SIGNATURE_NAME
from edge_image.detector import Detector
from edge_image.draw import annotate, encode_jpeg
from edge_image.metrics import Metrics
from edge_image.outputs import Output, Viewer, frame_record
from edge_image.sources import LatestFrameGrabber, Source, SourceEndedError, SourceError, make_source

log = logging.getLogger(__name__)

BackendFactory = Callable[[str, Any, Bundle], Backend]


@dataclass
class Status:
    """What ``/healthz`` and ``/api/detections`` report besides the latest frame."""

    state: str = "starting"  # starting, running, reconnecting, reopening, ended, stopped
    model: str = ""
    backend: str = ""
    device: str = ""
    last_frame_at: float = 0.0
    last_error: str = ""
    last_reload: dict[str, Any] = field(default_factory=dict)


Stamp = tuple[str, int, int, int, int]


def _manifest_stamp(bundle_dir: Path) -> Stamp | None:
    """Identity of the bundle's manifest and signature (resolved path, mtimes, sizes), to notice
    replacements; a signature written after its manifest changes the stamp too, so a bundle
    refused while it was half copied is tried again."""
    try:
        real = Path(os.path.realpath(bundle_dir)) / MANIFEST_NAME
        st = real.stat()
    except OSError:
        return None
    try:
        sig = (real.parent / SIGNATURE_NAME).stat()
        signed = (sig.st_mtime_ns, sig.st_size)
    except OSError:
        signed = (0, -1)
    return str(real), st.st_mtime_ns, st.st_size, *signed


class Pipeline:
    """One source, one model, one backend; every result goes to ``outputs`` and ``viewer``.

    ``outputs`` get each frame's record; ``viewer`` (None: nothing is drawn) gets the record
    and, while :meth:`~edge_image.outputs.Viewer.wants_jpeg` (else at most once a second), the
    annotated JPEG. ``backend_factory``, ``source_factory`` and ``usb_root`` are seams for tests.
    """

    def __init__(
        self,
        config: ServiceConfig,
        metrics: Metrics,
        *,
        outputs: Sequence[Output] = (),
        viewer: Viewer | None = None,
        backend_factory: BackendFactory = open_backend,
        source_factory: Callable[[Any], Source] = make_source,
        usb_root: Path = Path("/sys/bus/usb/devices"),
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.outputs = tuple(outputs)
        self.viewer = viewer
        self.backend_factory = backend_factory
        self.source_factory = source_factory
        self.usb_root = usb_root
        self.status = Status()
        self.heartbeat = time.monotonic()
        self.bundle: Bundle | None = None
        self.backend: Backend | None = None
        self.kind = ""
        self._stop = threading.Event()
        self._reloads: list[tuple[Path, concurrent.futures.Future[dict[str, Any]]]] = []
        self._reload_lock = threading.Lock()
        self._stamp: Stamp | None = None
        #: the bundle the watcher follows: the configured one until a reload names another
        self._watched: Path = config.model.bundle
        #: set once run() has returned: reloads are then done by the caller (nothing else loads)
        self._loop_done = False
        self._direct = threading.Lock()
        self._next_watch = 0.0
        self._fps = 0.0
        self._last_done = 0.0
        self._last_jpeg_at = 0.0

    # ----------------------------------------------------------------- model

    def load_initial(self) -> None:
        """Load and verify the configured bundle and open its backend; :class:`UserError` if refused."""
        bundle = load_bundle(self.config.model.bundle, trust=self.config.model.trust())
        self._stamp = _manifest_stamp(self.config.model.bundle)
        try:
            backend = self._open(bundle)
        except BackendError as exc:  # e.g. the stick is not plugged in yet: the loop keeps trying
            log.warning("backend not ready, will retry: %s", exc)
            self.bundle, self.status.last_error = bundle, f"backend: {exc}"
            return
        self._activate(bundle, backend)

    def _open(self, bundle: Bundle) -> Backend:
        self.kind = resolve_kind(self.config.backend, bundle, self.usb_root)
        return self.backend_factory(self.kind, self.config.backend, bundle)

    def _activate(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle, self.backend = bundle, backend
        name = f"{bundle.manifest['name']} {bundle.manifest['version']}"
        self.status.model, self.status.backend, self.status.device = name, backend.name, backend.device
        self.metrics.set_model(
            bundle.manifest["name"], bundle.manifest["version"], backend.name, backend.device
        )
        log.info("serving %s on %s (%s)", name, backend.name, backend.device)

    def request_reload(self, bundle_dir: Path | None = None, timeout: float = 120.0) -> dict[str, Any]:
        """Ask the loop to reload (blocking until done); returns ``{"ok", "model"|"error"}``."""
        future: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        target = bundle_dir or self.config.model.bundle
        with self._reload_lock:
            if not self._loop_done:
                self._reloads.append((target, future))
        if self._loop_done:  # a finite source has ended (or the loop stopped): no loop to ask
            if self._stop.is_set():
                return {"ok": False, "error": "the service is stopping", "kept": self.status.model}
            with self._direct:
                return self._reload(target)
        return future.result(timeout=timeout)

    def _reload(self, bundle_dir: Path) -> dict[str, Any]:
        """Verify then swap; on any failure keep the current model and say why."""
        stamp = _manifest_stamp(bundle_dir)
        try:
            bundle = load_bundle(bundle_dir, trust=self.config.model.trust())
        except UserError as exc:
            return self._refused(str(exc), stamp)
        old = self.backend
        exclusive = self.kind == "mvnc"  # one graph per stick: release before allocating again
        if exclusive and old is not None:
            old.close()
        try:
            backend = self._open(bundle)
        except (UserError, BackendError, RuntimeError, OSError) as exc:
            if exclusive and self.bundle is not None:
                self.backend = None  # reopened by the loop with backoff
            return self._refused(f"{bundle.root}: cannot load on the backend: {exc}", stamp)
        if old is not None and not exclusive:
            old.close()
        self._activate(bundle, backend)
        self._stamp, self._watched = stamp, bundle_dir
        self.metrics.reloads.labels("ok").inc()
        self.status.last_reload = {"ok": True, "model": self.status.model, "at": time.time()}
        return dict(self.status.last_reload)

    def _refused(self, reason: str, stamp: tuple[str, int, int] | None) -> dict[str, Any]:
        self._stamp = stamp  # do not retry the same broken manifest every interval
        self.metrics.reloads.labels("refused").inc()
        self.metrics.errors.labels("reload").inc()
        log.error("model refused, keeping %s: %s", self.status.model or "no model", reason)
        self.status.last_reload = {"ok": False, "error": reason, "kept": self.status.model, "at": time.time()}
        return dict(self.status.last_reload)

    def _service_reloads(self) -> None:
        with self._reload_lock:
            pending, self._reloads = self._reloads, []
        for bundle_dir, future in pending:
            try:
                future.set_result(self._reload(bundle_dir))
            except Exception as exc:  # report to the requester, keep the loop alive
                future.set_exception(exc)
        now = time.monotonic()
        if self.config.model.watch and now >= self._next_watch:
            self._next_watch = now + self.config.model.watch_interval
            stamp = _manifest_stamp(self._watched)
            if stamp is not None and stamp != self._stamp:
                log.info("bundle manifest changed (%s): reloading", stamp[0])
                self._reload(self._watched)

    # ----------------------------------------------------------------- loop

    def stop(self) -> None:
        """Ask the loop to finish its current frame and return."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (wakes on stop), keeping the heartbeat fresh."""
        end = time.monotonic() + seconds
        while not self._stop.is_set():
            self.heartbeat = time.monotonic()
            left = end - self.heartbeat
            if left <= 0:
                return
            self._stop.wait(min(left, 0.5))

    def _connect_source(self, backoff: Backoff, *, after_failure: bool) -> Source | None:
        """Open the source; every attempt after a failure counts as a reconnect."""
        failures = 0
        while not self._stop.is_set():
            if after_failure or failures:
                self.metrics.reconnects.labels("source").inc()
            source = self.source_factory(self.config.source)
            try:
                source.open()
                if failures or after_failure:
                    log.info("source reconnected: %s", self.config.source.describe())
                return source
            except SourceError as exc:
                source.close()
                failures += 1
                self.status.state, self.status.last_error = "reconnecting", str(exc)
                self.metrics.up.set(0)
                delay = backoff.delay(failures)
                log.warning("source: %s; retrying in %.1f s", exc, delay)
                self._wait(delay)
                self._service_reloads()
        return None

    def _reopen_backend(self) -> None:
        failures = 0
        while self.backend is None and not self._stop.is_set() and self.bundle is not None:
            failures += 1
            self.metrics.reconnects.labels("backend").inc()
            self.status.state = "reopening"
            self.metrics.up.set(0)
            try:
                self.backend = self._open(self.bundle)
                self._activate(self.bundle, self.backend)
                return
            except (BackendError, UserError, RuntimeError, OSError) as exc:
                delay = self.config.backend.reopen.delay(failures)
                self.status.last_error = f"backend: {exc}"
                log.warning("backend reopen failed: %s; retrying in %.1f s", exc, delay)
                self._wait(delay)

    def run(self) -> None:
        """The loop; returns when stopped or when a finite source has ended."""
        source: Source | None = None
        source_failed = False
        limit = 1.0 / self.config.fps_limit if self.config.fps_limit else 0.0
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                self._service_reloads()
                if self.backend is None:
                    self._reopen_backend()
                    continue
                if source is None:
                    source = self._connect_source(self.config.source.reconnect, after_failure=source_failed)
                    continue
                started = time.monotonic()
                try:
                    frame = source.read()
                except SourceEndedError:
                    log.info("source ended: %s", self.config.source.describe())
                    self.status.state = "ended"
                    self.metrics.up.set(0)
                    return
                except SourceError as exc:
                    self.metrics.errors.labels("source").inc()
                    self.status.last_error = str(exc)
                    log.warning("source failed: %s", exc)
                    source.close()
                    source = None
                    source_failed = True
                    continue
                try:
                    self._process(frame.image, frame.index, started)
                except BackendError as exc:
                    self.metrics.errors.labels("backend").inc()
                    self.status.last_error = str(exc)
                    log.error("backend failed, reopening: %s", exc)
                    if self.backend is not None:
                        self.backend.close()
                    self.backend = None
                    continue
                if isinstance(source, LatestFrameGrabber):
                    self.metrics.dropped.set(source.dropped)
                if limit:
                    self._wait(limit - (time.monotonic() - started))
        finally:
            if source is not None:
                source.close()
            if self.status.state != "ended":
                self.status.state = "stopped"
            with self._reload_lock:
                self._loop_done = True
            self._service_reloads()  # requests that came in while the loop was finishing

    def _process(self, image: np.ndarray, index: int, started: float) -> None:
        backend, bundle = self.backend, self.bundle
        assert backend is not None and bundle is not None
        t1 = time.monotonic()
        detector = Detector(backend, bundle.spec, thresh=self.config.model.thresh, nms=self.config.model.nms)
        result = detector.detect(image)
        dets: Detections = result.detections
        t4 = time.monotonic()
        stages = {"capture": t1 - started, **result.stages, "total": t4 - started}
        for stage, seconds in stages.items():
            self.metrics.stage_seconds.labels(stage).observe(seconds)
        self.metrics.frames.inc()
        if self._last_done:
            rate = 1.0 / max(t4 - self._last_done, 1e-6)
            self._fps = rate if not self._fps else 0.9 * self._fps + 0.1 * rate
            self.metrics.fps.set(self._fps)
        self._last_done = t4
        h, w = image.shape[:2]
        records = dets.to_records(bundle.classes, w, h)
        for rec in records:
            self.metrics.detections.labels(str(rec["label"])).inc()
        record = frame_record(
            frame=index,
            timestamp=time.time(),
            model=self.status.model,
            backend=backend.name,
            width=w,
            height=h,
            detections=records,
            latency_ms={k: v * 1000.0 for k, v in stages.items()},
        )
        record["fps"] = round(self._fps, 2)
        self.status.state, self.status.last_frame_at = "running", t4
        self.metrics.up.set(1)
        for output in self.outputs:
            try:
                output.write(record)
            except Exception as exc:  # an output must never stop detection
                self.metrics.errors.labels("output").inc()
                log.warning("output %s failed: %s", type(output).__name__, exc)
        if self.viewer is None:
            return
        jpeg = None
        if self.viewer.wants_jpeg() or t4 - self._last_jpeg_at > 1.0:
            drawn = annotate(image, dets, bundle.classes, self._fps, stages["total"] * 1000.0)
            jpeg = encode_jpeg(drawn, self.config.server.jpeg_quality)
            self._last_jpeg_at = t4
        self.viewer.publish(jpeg, record)

    def close(self) -> None:
        """Release the backend and outputs (after :meth:`run` returned)."""
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        for output in self.outputs:
            try:
                output.close()
            except Exception as exc:
                log.warning("closing %s: %s", type(output).__name__, exc)
