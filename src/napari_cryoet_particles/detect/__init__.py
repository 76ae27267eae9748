"""Detection: dense embedding, clustering, peak picking, baselines."""
