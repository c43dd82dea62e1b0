"""Building blocks shared by the codec and the LM."""
