"""Edge inference service: camera → Movidius (mvnc) / OpenVINO / OpenCV DNN → detections."""

__version__ = "0.1.0"
