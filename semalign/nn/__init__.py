"""Layer 3: networks on the pure functions of :mod:`semalign.attention`.

The encoder trunk (embeddings, positions, n-gram features, blocks, final norm), attention
layers with a pluggable scoring, poolings and heads, as thin NNX modules.
"""
