/* bf16 weights: LinearHalf.c with the bfloat16 conversion. */
#include "LinearHalf.c"
