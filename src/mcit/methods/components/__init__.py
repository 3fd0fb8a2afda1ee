"""Pieces methods share: replay buffer, importance estimators, gradient operations, task
similarity, subspace bases, and saving method state."""
