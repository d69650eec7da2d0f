// libxcrypt's crypt_r, for bcrypt verification of htpasswd entries (Debian: libcrypt-dev).
#include <crypt.h>
