"""``report.html``: a self-contained model card (pictures embedded as base64)."""
