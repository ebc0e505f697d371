/* f16 weights: LinearHalf.c with the IEEE half conversion. */
#define KILN_HALF_F16 1
#include "LinearHalf.c"
