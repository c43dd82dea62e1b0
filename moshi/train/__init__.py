"""Training: the codec and LM trainers."""
