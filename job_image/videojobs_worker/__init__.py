"""The videojobs worker: download, cut, publish and report one VideoProcessingJob."""
