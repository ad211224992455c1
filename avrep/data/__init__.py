"""Data: shipped vocabulary, corpus recipes, landmarks, alignment, feature store, datasets and opening
them by name (sources: a store or `toy`)."""
