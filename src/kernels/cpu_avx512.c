#include "kernels/dispatch.h"
int fr_kernels_install_avx512(fr_type_traits *t, int bf16) { (void)t; (void)bf16; return 0; }
