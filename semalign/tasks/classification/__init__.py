"""Text classification: one text, one label; selects on validation accuracy."""
