/*
 * tls.h — what server.c needs of the TLS certificates (tls.c): the set in
 * force, pinned by each connection, and the handshake's certificate
 * callback. The public half (http_tls_open / http_tls_free and the
 * reload step) is in http.h.
 *
 * A certificate set (the chain and its private key) is current until a
 * reload puts another in force; a connection pins the set current when
 * it opens and unpins it when it closes, and its handshake uses that set.
 * A set no longer current is freed when its last connection closes: a
 * handshake never sees its key freed under it, and connections open
 * across a reload keep working.
 */
#ifndef CB_HTTP_TLS_H
#define CB_HTTP_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "http/http.h"

typedef struct tls_set tls_set;

/* The current set, pinned for one connection (never NULL). */
tls_set *http_tls_pin(http_tls *t);
/* Ends a connection's pin; frees the set if it was its last and the set
 * is no longer current. NULL: nothing. */
void http_tls_unpin(http_tls *t, tls_set *s);
/* Hands a handshake the pinned set's chain and key (the shape of
 * gnutls_certificate_retrieve_function2's outputs); -1 for NULL. */
int http_tls_use(const tls_set *s, gnutls_pcert_st **pcert, unsigned *npcert,
                 gnutls_privkey_t *key);

/* Adds the step that reads the files again (a new set when they changed
 * and are good; else the current one stays, and the step says why). */
int http_tls_register(http_tls *t, reload_registry *r);

/* TLS 1.2 and 1.3 only, and no RSA key exchange (no forward secrecy, and
 * its key would be used after the handshake's first flight). */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA"

#endif
