/*
 * progress.c — a long command's progress on stderr (cli.h): a bar redrawn
 * in place on a terminal, plain periodic lines when stderr is a file or a
 * pipe (a log, a CI job), and always one last line with the totals.
 *
 * Invariants: a terminal is redrawn at most 10 times a second and a log
 * gets a line at most every CLI_PROGRESS_LINE_S seconds, however often
 * cli_progress_add is called; nothing is drawn after cli_progress_end.
 */
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/text.h"

#define TTY_EVERY_S 0.1
#define BAR_WIDTH 24

static double now_s(void)
{
    return (double)text_monotonic_us() / 1e6;
}

void cli_progress_start(cli_progress *p, FILE *f, const char *what, const char *unit,
                        int64_t total_items, int64_t total_bytes)
{
    *p = (cli_progress){.f = f, .what = what, .tty = isatty(fileno(f)) == 1};
    p->every = p->tty ? TTY_EVERY_S : CLI_PROGRESS_LINE_S;
    meter_start(&p->m, unit, total_items, total_bytes, now_s());
    p->last = p->m.began;
}

/* "[##########--------------]  42% " for a known share, "" otherwise. */
static void bar(const cli_progress *p, char *out, size_t cap)
{
    int pc = meter_percent(&p->m);
    out[0] = '\0';
    if (pc >= 0 && !p->tty)
        snprintf(out, cap, "%d%% ", pc);
    if (pc < 0 || !p->tty)
        return;
    char cells[BAR_WIDTH + 1];
    int full = pc * BAR_WIDTH / 100;
    memset(cells, '#', (size_t)full);
    memset(cells + full, '-', (size_t)(BAR_WIDTH - full));
    cells[BAR_WIDTH] = '\0';
    snprintf(out, cap, "[%s] %3d%% ", cells, pc);
}

static void draw(cli_progress *p, double now, bool last)
{
    char b[BAR_WIDTH + 16], line[256];
    bar(p, b, sizeof b);
    meter_format(&p->m, now, line, sizeof line);
    if (p->tty)
        fprintf(p->f, "\r\033[K%s: %s%s%s", p->what, b, line, last ? "\n" : "");
    else
        fprintf(p->f, "%s: %s%s\n", p->what, b, line);
    fflush(p->f);
    p->last = now;
}

void cli_progress_add(cli_progress *p, int64_t items, int64_t bytes)
{
    meter_add(&p->m, items, bytes);
    double now = now_s();
    if (!p->ended && now - p->last >= p->every)
        draw(p, now, false);
}

void cli_progress_end(cli_progress *p)
{
    if (p->ended)
        return;
    draw(p, now_s(), true);
    p->ended = true;
}
