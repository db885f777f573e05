"""Prometheus metrics of one service instance (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STAGES = ("capture", "preprocess", "infer", "decode", "total")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's counters, gauges and histograms (names prefixed ``edge_``).

    >>> m = Metrics(); m.frames.inc(); b"edge_frames_total 1.0" in m.render()
    True
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.fps = Gauge("edge_fps", "Processed frames per second (moving average)", registry=r)
        self.stage_seconds = Histogram(
            "edge_stage_seconds",
            "Per-frame latency by pipeline stage",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.frames = Counter("edge_frames", "Frames processed", registry=r)
        self.detections = Counter("edge_detections", "Detections by class", ["label"], registry=r)
        self.errors = Counter("edge_errors", "Errors by kind", ["kind"], registry=r)
        self.reconnects = Counter(
            "edge_reconnects", "Reconnect attempts by component", ["component"], registry=r
        )
        self.reloads = Counter(
            "edge_model_reloads", "Model reload attempts by result", ["result"], registry=r
        )
        self.model_info = Gauge(
            "edge_model_info", "Loaded model (value 1)", ["name", "version", "backend", "device"], registry=r
        )
        self.dropped = Gauge("edge_frames_dropped", "Stale frames dropped by the live grabber", registry=r)
        self.up = Gauge(
            "edge_pipeline_up", "1 while frames flow, 0 while reconnecting or stopped", registry=r
        )
        self.connections = Gauge("edge_http_connections", "Open HTTP connections", registry=r)
        self.connections_refused = Counter(
            "edge_http_connections_refused", "Connections refused over server.max_connections", registry=r
        )
        for stage in STAGES:
            self.stage_seconds.labels(stage)
        for kind in ("source", "backend", "reload", "output"):
            self.errors.labels(kind)
        for component in ("source", "backend"):
            self.reconnects.labels(component)

    def set_model(self, name: str, version: str, backend: str, device: str) -> None:
        """Expose exactly one ``edge_model_info`` series: the model now serving."""
        self.model_info.clear()
        self.model_info.labels(name, version, backend, device).set(1)

    def render(self) -> bytes:
        """Text exposition format."""
        return generate_latest(self.registry)
