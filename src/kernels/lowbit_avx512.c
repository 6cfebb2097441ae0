/* placeholder, replaced below */
#include "kernels/lowbit.h"
int fr_kernels_install_lowbit_avx512(fr_type_traits *t) {
    (void)t;
    return 0;
}
