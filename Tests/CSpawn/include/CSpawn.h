#ifndef CSPAWN_H
#define CSPAWN_H

#include <spawn.h>

/// glibc's GNU extensions to posix_spawn, which Swift's Glibc module does not show: close every
/// descriptor from `lowest` up in the child, and change the child's working directory.
int cspawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int lowest);
int cspawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// pipe2(O_CLOEXEC): a pipe no other child inherits by accident.
int cspawn_pipe_cloexec(int descriptors[2]);

#endif
