"""Masked-language-model pretraining: BERT-style masks, output tied to the embedding."""
