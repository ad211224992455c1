"""Click commands, one module per capability; each is a thin wrapper over the Python API."""
