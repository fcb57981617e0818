"""The one training loop and what it needs: checkpoints, image pools, statistics."""
