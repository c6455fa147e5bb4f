"""Jobs: asynchronous work kept in the index (engine.py) and the kinds of jobs the daemon runs."""
