/* install-app.c: a program using the installed libkvreviver, built by
 * tests/install.sh with pkg-config (shared and static). */
#include <stdio.h>
#include <kvreviver.h>

int main(void)
{
    enum { D = 64, N = 300 };
    static float k[N][D], v[N][D], q[D], out[D];
    kvr_config cfg;
    kvr_cache *c = NULL;
    kvr_config_default(&cfg);
    if (kvr_plan(0.25, N, D, &cfg) != KVR_OK) { fprintf(stderr, "app: %s\n", kvr_last_error()); return 1; }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) {
            k[i][j] = (float)((i * 7 + j * 3) % 11) / 11.0f - 0.5f;
            v[i][j] = (float)((i * 5 + j) % 13) / 13.0f - 0.5f;
        }
    for (int j = 0; j < D; j++)
        q[j] = (float)(j % 5) / 5.0f;
    int cuda = kvr_backend_available(KVR_BACKEND_CUDA);
    if (!cuda) {   /* unavailable: refused cleanly */
        int st = kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_CUDA);
        if (st == KVR_OK || c) { fprintf(stderr, "a cuda cache was made without a GPU\n"); return 1; }
    }
    int st = kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF);
    if (st == KVR_OK) st = kvr_append(c, 0, N, &k[0][0], &v[0][0]);
    if (st == KVR_OK) st = kvr_attend(c, 0, q, out, 0);
    kvr_cache_free(c);
    if (st != KVR_OK) { fprintf(stderr, "app: %s\n", kvr_last_error()); return 1; }
    printf("kvreviver %s, cuda backend %s, out[0] = %.6f\n", kvr_version(),
           cuda ? "available" : "unavailable", (double)out[0]);
    return 0;
}
