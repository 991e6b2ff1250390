# libsocketd's version, kept apart from socketd's own (project() VERSION in
# the top CMakeLists.txt): the library's number says what its ABI is, not
# which daemon it ships with (libmemcached's CMakeVersions.txt pattern).
#
#   LIBSOCKETD_SOVERSION  the SONAME is libsocketd.so.<this>.  Bump it only
#                         when a symbol is removed or changes meaning or a
#                         public type changes shape; rename the Debian
#                         package libsocketdN and the symbols file with it.
#   LIBSOCKETD_VERSION    MAJOR.MINOR.PATCH of the file name; MAJOR is the
#                         SOVERSION.  MINOR goes up with each release that
#                         adds functions (under a new node of
#                         client/libsocketd.map, LIBSOCKETD_1.1, and new
#                         lines in packaging/debian/libsocketd1.symbols);
#                         PATCH with fixes only.
#
# include/socketd/client.h repeats the three numbers as
# SOCKETD_CLIENT_VERSION_*; configuring fails if they disagree.
set(LIBSOCKETD_VERSION 1.1.0)
set(LIBSOCKETD_SOVERSION 1)
