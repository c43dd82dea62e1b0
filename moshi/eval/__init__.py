"""Measuring speech: an independent recogniser (pocketsphinx with the corpus grammar), word
error rates and STOI. Reads the corpus' files (`grammar.jsgf`, `lexicon.dic`, manifests);
never imports `moshi.data`."""
