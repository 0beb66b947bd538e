"""Replaced-token detection (ELECTRA): a small generator fills masks, the trunk spots them."""
