/*
 * embed_assets.c — compiles the web page's static files into C (a build
 * tool the Makefile runs: `embed_assets OUT.c PREFIX=DIR...`).
 *
 * Each PREFIX=DIR mounts the files under DIR (recursively; names starting
 * with "." are skipped) at the URL PREFIX + their path below DIR: "/=web"
 * serves web/app.js as /app.js. OUT.c defines asset_files[] (see
 * src/api/asset_table.h), sorted by URL path for a binary search, each
 * with its bytes, its Content-Type (from the file name's extension; an
 * unknown one stops the build, so that nothing is served as the wrong
 * type), and a strong ETag made from a BLAKE2b hash of the bytes (so the
 * tag changes exactly when the content does, across builds and servers).
 *
 * OUT.c is written to a temporary file and renamed: an interrupted run
 * never leaves a half-written source behind.
 */
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define URL_MAX 512
#define TAG_BYTES 16

typedef struct {
    char url[URL_MAX];
    char file[URL_MAX + 256];
} entry;

static entry *entries;
static size_t nentries, capentries;

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json; charset=utf-8"},
    {".map", "application/json; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".woff2", "font/woff2"},
};

static const char *type_of(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static void die(const char *what, const char *name)
{
    fprintf(stderr, "embed_assets: %s: %s\n", name, what);
    exit(1);
}

static void add(const char *url, const char *file)
{
    if (nentries == capentries) {
        capentries = capentries ? capentries * 2 : 64;
        entries = realloc(entries, capentries * sizeof(*entries));
        if (entries == NULL)
            die("out of memory", file);
    }
    entry *e = &entries[nentries++];
    if ((size_t)snprintf(e->url, sizeof(e->url), "%s", url) >= sizeof(e->url) ||
        (size_t)snprintf(e->file, sizeof(e->file), "%s", file) >= sizeof(e->file))
        die("path too long", file);
}

/* Adds every file under dir, its URL url + its name. */
static void walk(const char *dir, const char *url)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        die(strerror(errno), dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (de->d_name[strcspn(de->d_name, "\"\\?%#")] != '\0')
            die("a file name with \" \\ ? % or # cannot be a URL path here", de->d_name);
        char file[URL_MAX + 256], sub[URL_MAX];
        struct stat st;
        if ((size_t)snprintf(file, sizeof(file), "%s/%s", dir, de->d_name) >= sizeof(file) ||
            (size_t)snprintf(sub, sizeof(sub), "%s%s", url, de->d_name) >= sizeof(sub))
            die("path too long", de->d_name);
        if (stat(file, &st) != 0)
            die(strerror(errno), file);
        if (S_ISDIR(st.st_mode)) {
            strncat(sub, "/", sizeof(sub) - strlen(sub) - 1);
            walk(file, sub);
        } else if (S_ISREG(st.st_mode)) {
            if (type_of(de->d_name) == NULL)
                die("no Content-Type known for this extension (scripts/embed_assets.c)", file);
            add(sub, file);
        }
    }
    closedir(d);
}

static int by_url(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->url, ((const entry *)b)->url);
}

static unsigned char *slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        die(strerror(errno), file);
    size_t cap = 65536, n = 0;
    unsigned char *p = malloc(cap);
    size_t got;
    while (p != NULL && (got = fread(p + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap && (p = realloc(p, cap *= 2)) == NULL)
            break;
    if (p == NULL || ferror(f))
        die("cannot read", file);
    fclose(f);
    *len = n;
    return p;
}

/* static const unsigned char a<i>[] = {...}; and its tag into tag. */
static void emit_bytes(FILE *out, size_t i, const entry *e, size_t *len, char *tag)
{
    unsigned char *p = slurp(e->file, len);
    unsigned char h[TAG_BYTES];
    crypto_generichash(h, sizeof(h), p, *len, NULL, 0);
    for (size_t k = 0; k < TAG_BYTES; k++)
        sprintf(tag + 2 * k, "%02x", h[k]);
    fprintf(out, "/* %s */\nstatic const unsigned char a%zu[%zu] = {", e->file, i, *len ? *len : 1);
    for (size_t k = 0; k < *len; k++)
        fprintf(out, "%s%u,", k % 24 ? "" : "\n", p[k]);
    fprintf(out, "%s};\n", *len ? "\n" : "0");
    free(p);
}

int main(int argc, char **argv)
{
    if (argc < 3 || sodium_init() < 0) {
        fprintf(stderr, "usage: %s OUT.c PREFIX=DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || argv[i][0] != '/' || eq[-1] != '/')
            die("a mount is PREFIX=DIR, PREFIX starting and ending with /", argv[i]);
        *eq = '\0';
        walk(eq + 1, argv[i]);
    }
    qsort(entries, nentries, sizeof(*entries), by_url);
    for (size_t i = 1; i < nentries; i++)
        if (strcmp(entries[i].url, entries[i - 1].url) == 0)
            die("two files for one URL", entries[i].url);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    FILE *out = fopen(tmp, "w");
    if (out == NULL)
        die(strerror(errno), tmp);
    fprintf(out,
            "/* Generated by scripts/embed_assets.c. Do not edit: edit the files and run make. */\n"
            "#include \"api/asset_table.h\"\n\n");
    size_t *lens = calloc(nentries + 1, sizeof(size_t));
    char(*tags)[2 * TAG_BYTES + 1] = calloc(nentries + 1, sizeof(*tags));
    if (lens == NULL || tags == NULL)
        die("out of memory", argv[1]);
    for (size_t i = 0; i < nentries; i++)
        emit_bytes(out, i, &entries[i], &lens[i], tags[i]);
    fprintf(out, "\nconst asset_file asset_files[] = {\n");
    for (size_t i = 0; i < nentries; i++)
        fprintf(out, "    {\"%s\", \"%s\", a%zu, %zu, \"\\\"%s\\\"\"},\n", entries[i].url,
                type_of(entries[i].url), i, lens[i], tags[i]);
    fprintf(out, "    {0},\n};\nconst size_t asset_nfiles = %zu;\n", nentries);
    if (fclose(out) != 0 || rename(tmp, argv[1]) != 0)
        die(strerror(errno), argv[1]);
    free(lens);
    free(tags);
    free(entries);
    return 0;
}
