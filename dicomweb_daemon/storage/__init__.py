"""Where files live (storage areas) and how they get there (the ingest pipeline)."""
