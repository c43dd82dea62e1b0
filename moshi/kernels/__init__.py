"""Faster CPU paths, each beside the plain one it is tested against (tests/kernels).

conv   convolutions as one matrix product: exact, used automatically for big weights
int8   int8 weights for Mimi's big matrix products: opt-in (`int8.apply(mimi)`), approximate
"""
