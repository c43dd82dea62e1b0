"""Faster paths, each beside the plain one it is tested against (tests/kernels).

conv        convolutions as one matrix product: exact, used automatically for big weights
topk_head   the text token from the candidate rows of a bfloat16 screen: the same tokens
            (proven bound), used automatically on CPUs with bfloat16 instructions
cuda_graph  a step replayed as one CUDA graph
int8        int8 weights for the big matrix products: approximate, opt-in through
            moshi.quantize (`quantize.apply(mimi)`, `quantize.apply_lm(lm)`)
bf16        bfloat16 weights for the same products (oneDNN-packed where the CPU has
            bfloat16 instructions): approximate, opt-in (`quantize.apply(mimi, "bfloat16")`)

The exact few-row product of streaming steps (the fastest formulation of x @ W.T on this
machine) is moshi.nn.small_rows: below the codec and the LM, which use it through
moshi.nn.linear.
"""
