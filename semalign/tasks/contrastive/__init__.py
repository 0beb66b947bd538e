"""Unsupervised contrastive pretraining (SimCSE): two dropout views a text, in-batch negatives."""
