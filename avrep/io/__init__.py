"""Media input/output: decoding by presentation time (PyAV), probing (`describe`), and encoding."""
