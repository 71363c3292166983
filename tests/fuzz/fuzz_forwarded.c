/*
 * fuzz_forwarded.c — the forwarded-client parser, fwd_resolve()
 * (X-Forwarded-For, Forwarded, X-Forwarded-Proto from trusted proxies).
 *
 * Input: header lines separated by '\n'; each line's first byte picks its
 * header (modulo 4: X-Forwarded-For, Forwarded, X-Forwarded-Proto, or
 * another name, which must be ignored).
 *
 * Invariants beyond "no crash":
 *  - the address found, if any, is a NUL-terminated address that
 *    net_parse_addr accepts, written the way inet_ntop writes it (so
 *    resolving "X-Forwarded-For: <it>" alone gives it back);
 *  - it is not a trusted proxy unless every hop was (then it is the
 *    first): checked by resolving again with no proxy trusted, which
 *    must give the right-most hop, an address or nothing;
 *  - lines of other headers change nothing.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/forwarded.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "Via"};

static void check_addr(const net_cidr_list *l, const char *addr)
{
    uint8_t b[16];
    bool v4;
    assert(memchr(addr, '\0', FWD_ADDR_MAX) != NULL);
    if (addr[0] == '\0')
        return;
    assert(net_parse_addr(addr, b, &v4));
    fwd_headers h = {0};
    fwd_headers_add(&h, "X-Forwarded-For", addr);
    fwd_result again;
    fwd_resolve(l, &h, &again);
    assert(strcmp(again.addr, addr) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    net_cidr_list trusted = {0}, none = {0};
    assert(net_cidr_list_parse(&trusted, "127.0.0.0/8, 10.0.0.0/8, ::1, 2001:db8::/32") == CB_EOK);
    fwd_headers h = {0}, only = {0};
    for (char *line = text, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (*line == '\0')
            continue;
        const char *name = names[(unsigned char)*line % 4];
        fwd_headers_add(&h, name, line + 1);
        if ((unsigned char)*line % 4 != 3)
            fwd_headers_add(&only, name, line + 1);
    }
    fwd_result r, r_only, r_none;
    fwd_resolve(&trusted, &h, &r);
    fwd_resolve(&trusted, &only, &r_only);
    fwd_resolve(&none, &h, &r_none);
    assert(strcmp(r.addr, r_only.addr) == 0 && r.proto == r_only.proto);
    check_addr(&trusted, r.addr);
    check_addr(&none, r_none.addr);
    if (r.addr[0] != '\0' && net_cidr_list_match_text(&trusted, r.addr) == false)
        assert(r_none.addr[0] != '\0'); /* an untrusted client: the chain was well formed */
    free(text);
    return 0;
}
