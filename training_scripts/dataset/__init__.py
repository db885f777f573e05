"""Dataset import for darknet: readers (Flickr27, VOC, COCO, YOLO), validation, split, writer,
report, anchors and a synthetic-logo generator.

Entry points others import:

- :func:`training_scripts.dataset.prepare.prepare_dataset` (source dir → darknet layout, report dict)
- :func:`training_scripts.dataset.synth.make_synthetic` / :func:`~training_scripts.dataset.synth.make_video`
- :mod:`training_scripts.dataset.darknet_layout` (``read_data_file``, ``read_list``,
  ``read_labels``, ``label_path_for``)
- :func:`training_scripts.dataset.anchors.kmeans_anchors` / :func:`~training_scripts.dataset.anchors.avg_iou`
"""
