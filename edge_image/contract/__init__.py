"""The bundle contract: what the training side writes and every device reads, in one place.

- :mod:`~edge_image.contract.manifest`: ``manifest.json``, the table of artifact types
  (``ARTIFACT_TYPES``: file names, companions, runtimes, parity), building and verifying a
  bundle (:func:`~edge_image.contract.manifest.load_bundle`);
- :mod:`~edge_image.contract.signing`: the bundle signature and the node's trusted keys;
- :mod:`~edge_image.contract.decode`: the raw region output → boxes, scores, classes, and NMS;
- :mod:`~edge_image.contract.errors`: :class:`~edge_image.contract.errors.UserError` (one
  line, non-zero exit) and the JSON readers that name the file, line and column;
- :mod:`~edge_image.contract.fields`: typed reads of a parsed YAML/JSON mapping (the edge
  ``config.yml``, ``selection.json``, ``latest.json``), errors ``FILE: a.b[2].c: problem``;
- :mod:`~edge_image.contract.atomic`: atomic file and directory writes that survive a crash;
- :mod:`~edge_image.contract.progress`: percent, rate and ETA lines for long work.

It imports nothing from the rest of the project and, at import time, nothing outside the
standard library but numpy (``decode``); ``signing`` imports ``cryptography`` when it checks
or makes a signature. ``training_scripts``, ``cdk`` and the edge service import it; the edge
service's own modules (``edge_image.*`` outside this package) are for the Pi and are not
imported by training or CDK code (``tests/foundation/test_layers.py`` checks both rules).
It lives inside ``edge_image`` because the Pi needs exactly it besides the service, and the
edge role copies that one package to every node.
"""
