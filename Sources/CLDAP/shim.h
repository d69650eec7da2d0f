// OpenLDAP's client library, for `users.ldap` binds and searches (Debian: libldap-dev).
#include <lber.h>
#include <ldap.h>
