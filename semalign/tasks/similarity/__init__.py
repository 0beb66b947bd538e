"""Sentence similarity: two texts, a score; a siamese encoder; selects on Spearman."""
