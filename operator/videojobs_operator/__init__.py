"""The videojobs operator: reconciles VideoProcessingJobs into batch/v1 Jobs."""
