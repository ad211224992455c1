"""Data: shipped vocabulary, corpus recipes, landmarks, alignment, feature store and datasets."""
