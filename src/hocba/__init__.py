"""hocba: the national ingestion pipeline for học bạ số (digital school records)."""

__version__ = "0.1.0"
