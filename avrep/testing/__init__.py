"""Helpers that avrep's tests and benchmarks share (never imported by the library): `avrep.testing.media`
(small test media written with PyAV) and `avrep.testing.robustness` (the bad-media zoo, the in-process CLI
runner, SIGKILL-and-resume trials, the crash-isolating fuzz runner). Benchmarks import these, never `tests`.
"""
