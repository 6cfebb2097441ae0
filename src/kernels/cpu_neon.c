/* placeholder, replaced below */
#include "kernels/dispatch.h"
int fr_kernels_install_neon(fr_type_traits *t) { (void)t; return 0; }
