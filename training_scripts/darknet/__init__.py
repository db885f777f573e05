"""darknet model files in Python: cfg parse/render/generate, ``.weights`` IO, a numpy forward pass.

Modules: :mod:`.cfg` (parse, render, shapes), :mod:`.profiles` (generate a Tiny-YOLOv2 cfg),
:mod:`.weights` (read/write/partial/random weights), :mod:`.forward` (reference inference).
"""
