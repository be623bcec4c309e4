"""videojobs: cut long videos into named per-topic clips, on Kubernetes or locally."""

__version__ = "0.1.0"
