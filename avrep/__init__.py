"""avrep: audio-visual speech representations (DAVS)."""
__version__ = "0.1.0"
