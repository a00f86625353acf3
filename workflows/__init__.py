"""Workflow code: deterministic, no I/O; activities run on each service's task queue."""
