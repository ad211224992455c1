"""`avrep report`: a self-contained HTML page (metrics vs goals, curves, t-SNE, retrieval, strips) for a run."""

from avrep.report.html import build_report

__all__ = ["build_report"]
