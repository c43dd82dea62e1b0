"""Training: data (manifests, word alignments, the text stream, cached codec codes), the LM
and codec trainers."""
