/*
 * imgworker.c — crmblob-img, the image worker: decodes, checks and renders
 * pictures for the server (src/img/imgw.h) so that no decoder runs inside
 * the server. The server starts it with the socket as fd 3 and the image
 * settings as options; it is not meant to be run by hand. It ends when the
 * socket does: when the server stops, exits or dies. (Not PDEATHSIG: that
 * follows the server thread that started it, not the server.)
 *
 *   crmblob-img [--pixel-limit N] [--threads N] [--cache-mb N] [--cpu-limit S]
 *               [--lane-pixels N]
 *
 * --cpu-limit: CPU seconds per request (imgw.h); --lane-pixels: a worker
 * of the small lane (img.h, img_config.lane_pixels).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"
#include "img/imgw.h"

static bool parse_num(const char *s, int64_t max, int64_t *out)
{
    uint64_t n;
    if (!text_parse_u64(s, strlen(s), &n) || n > (uint64_t)max)
        return false;
    *out = (int64_t)n;
    return true;
}

static bool parse_args(int argc, char **argv, img_config *cfg)
{
    static const struct option opts[] = {{"pixel-limit", required_argument, NULL, 'p'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"cache-mb", required_argument, NULL, 'c'},
                                         {"cpu-limit", required_argument, NULL, 'l'},
                                         {"lane-pixels", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    int c;
    int64_t n;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == '?' || !parse_num(optarg, 2000000000, &n))
            return false;
        if (c == 'p')
            cfg->pixel_limit = n;
        else if (c == 't')
            cfg->threads = (int)n;
        else if (c == 'l')
            cfg->cpu_limit_s = (int)n;
        else if (c == 's')
            cfg->lane_pixels = n;
        else
            cfg->cache_mb = (int)n;
    }
    return optind == argc;
}

int main(int argc, char **argv)
{
    img_config cfg = {0};
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* a Ctrl-C reaches the whole group: the server stops us */
    if (!parse_args(argc, argv, &cfg)) {
        fprintf(stderr, "usage: crmblob-img [--pixel-limit N] [--threads N] [--cache-mb N] "
                        "[--cpu-limit S] [--lane-pixels N] (started by crmblob serve, socket "
                        "on fd 3)\n");
        return 2;
    }
    if (img_init(&cfg) != CB_EOK) {
        log_error("image worker: cannot start libvips");
        return 1;
    }
    int rc = imgw_serve(IMGW_FD, cfg.cpu_limit_s);
    img_shutdown();
    return rc;
}
