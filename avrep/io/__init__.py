"""Media input/output: decoding (decord video, PyAV audio), probing, and mp4 encoding."""
