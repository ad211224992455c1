"""Applications on raw media: lip reading, sync, talking-face generation."""
