"""The edge half under emulation: Debian roots for a Pi's architecture (:mod:`.rootfs`) and
``ansible/edge.yml`` run into one with the service started and probed (:mod:`.edge_node`)."""
