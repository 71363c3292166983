/*
 * fuzz_conf.c — the config file parser, cli_conf_parse(), and the values it
 * yields resolved into serve's settings, cli_resolve().
 *
 * Input: the text of a config file.
 *
 * Invariants beyond "no crash":
 *  - a refusal is one line naming the file and a line of it;
 *  - every setting found names a line of the input and an option that
 *    --print-config then shows;
 *  - resolving either succeeds or refuses with one line.
 */
#undef NDEBUG /* the checks below are the point */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lines_of(const uint8_t *data, size_t size)
{
    int n = 1;
    for (size_t i = 0; i < size; i++)
        n += data[i] == '\n';
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_opts o;
    char err[CLI_ERR_MAX] = "";
    int rc = cli_opts_init(&o, "serve", err);
    assert(rc == 0);
    rc = cli_conf_parse(&o, "f.conf", (const char *)data, size, err);
    assert(rc == 0 || rc == 2);
    if (rc == 2) {
        assert(strncmp(err, "f.conf:", 7) == 0 && strchr(err, '\n') == NULL);
        cli_opts_free(&o);
        return 0;
    }
    for (size_t i = 0; i < o.nsettings; i++) {
        assert(o.settings[i].from == CLI_FROM_FILE);
        assert(o.settings[i].line >= 1 && o.settings[i].line <= lines_of(data, size));
        assert(o.settings[i].value != NULL);
    }
    rc = cli_resolve(&o, err);
    assert(rc == 0 || (rc == 2 && strchr(err, '\n') == NULL));
    FILE *null = fopen("/dev/null", "w");
    if (null != NULL) {
        cli_print_config(&o, null);
        fclose(null);
    }
    cli_opts_free(&o);
    return 0;
}
