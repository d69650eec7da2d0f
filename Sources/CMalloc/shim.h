// glibc's malloc_trim, to hand freed heap memory back to the kernel once a burst of
// connections is gone (Swift's Glibc module does not declare it).
#include <malloc.h>
