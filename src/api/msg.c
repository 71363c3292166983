/*
 * msg.c — fills a catalogue template's {n} placeholders.
 *
 * A placeholder naming a missing argument is left as written so that a
 * faulty translation shows up in the text rather than crashing.
 */
#include "api/msg.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"

static const char *const en_templates[MSG__COUNT] = {
#define MSG_TEXT(id, text) [MSG_##id] = text,
    MSG_MAP(MSG_TEXT)
#undef MSG_TEXT
};

static void put_arg(buf_t *b, const msg_arg *arg)
{
    if (arg->s != NULL)
        buf_puts(b, arg->s);
    else
        buf_printf(b, "%" PRId64, arg->n);
}

char *msg_format(arena_t *a, msg_id id, const msg_arg *args, int nargs)
{
    assert(id >= 0 && id < MSG__COUNT);
    const char *t = en_templates[id];
    buf_t b;
    buf_init(&b, 4096);
    while (*t) {
        if (t[0] == '{' && t[1] >= '0' && t[1] <= '9' && t[2] == '}' && t[1] - '0' < nargs) {
            put_arg(&b, &args[t[1] - '0']);
            t += 3;
        } else {
            buf_append(&b, t++, 1);
        }
    }
    char *out = arena_strdup(a, buf_str(&b));
    buf_free(&b);
    return out;
}
