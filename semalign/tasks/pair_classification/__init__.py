"""Pair classification: two texts, a label; cross-attention between them; accuracy."""
