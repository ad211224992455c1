"""Synthetic audio-visual speech: espeak-ng speech, visemes, faces and the corpus writer."""
