/*
 * version.h — the version crmblob was built as: scripts/version.sh's text
 * (git describe in a checkout, else the VERSION file), stamped by the
 * Makefile into a generated file, so that only that file is compiled again
 * when the version changes.
 */
#ifndef CB_VERSION_H
#define CB_VERSION_H

/* e.g. "0.19.0+g1a2b3c4d5e" or "1.2.0"; never NULL nor empty. */
const char *version_string(void);

#endif
