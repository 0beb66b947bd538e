"""Causal language modelling: next-token prediction with any scoring; selects on perplexity."""
