#pragma once
#include <cblas.h>
// OpenBLAS extensions (declared in its cblas.h too; repeated so the shim documents what we use).
char *openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
