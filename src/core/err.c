/*
 * err.c — lookups into the CB_ERR_MAP table of err.h.
 */
#include "core/err.h"

#include <assert.h>

static const struct {
    int status;
    const char *type;
    const char *name;
} err_table[CB_ERR__COUNT] = {
#define CB_ERR_ROW(name, status, type) {status, type, #name},
    CB_ERR_MAP(CB_ERR_ROW)
#undef CB_ERR_ROW
};

int err_status(cb_err e)
{
    assert(e >= 0 && e < CB_ERR__COUNT);
    return err_table[e].status;
}

const char *err_type(cb_err e)
{
    assert(e >= 0 && e < CB_ERR__COUNT);
    return err_table[e].type;
}

const char *err_name(cb_err e)
{
    assert(e >= 0 && e < CB_ERR__COUNT);
    return err_table[e].name;
}
