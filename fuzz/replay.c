/* replay.c: run a fuzz target's LLVMFuzzerTestOneInput over saved inputs,
 * without libFuzzer: each argument is a file or a directory of files.  This
 * is how the seed corpora and every crash input found (fuzz/regress/) are
 * replayed in make check.  Exit 0 when every input ran; a bug aborts. */
#include <config.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

/* Run the target on the file at path; 1 on success, 0 when unreadable. */
static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "replay: cannot open '%s'\n", path);
        return 0;
    }
    size_t cap = 4096, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(fp); fprintf(stderr, "replay: out of memory\n"); return 0; }
        len += fread(buf + len, 1, cap - len, fp);
        if (len < cap) break;
        unsigned char *nbuf = realloc(buf, cap *= 2);
        if (!nbuf) free(buf);
        buf = nbuf;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: cannot open '%s'\n", argv[i]);
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            files++;
            bad += !replay_file(argv[i]);
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            files++;
            bad += !replay_file(path);
        }
        if (d) closedir(d);
    }
    printf("replay: %d inputs, %d unreadable\n", files, bad);
    return bad ? 1 : 0;
}
