/* vectors-mutants-gen.c: the whole of `kvreviver vectors --out DIR` and
 * nothing else, for tests/vectors-mutants.sh, which compiles it with the
 * library, the reference and the conformance kit's generators (one source
 * file mutated) into a program whose expected outputs are a port's outputs.
 *
 *   vectors-mutants-gen DIR
 *
 * Exit 0, 1 when a generator fails (with a message), 2 on a usage error. */
#include <config.h>
#include <stdio.h>
#include "conformance/vectors.h"

int main(int argc, char **argv)
{
    vec_writer w;
    if (argc != 2) {
        fprintf(stderr, "usage: vectors-mutants-gen DIR\n");
        return 2;
    }
    if (vw_open(&w, argv[1]) != 0)
        return 1;
    int status = vec_write_hashes(&w);
    if (status == 0) status = vec_write_elem(&w);
    if (status == 0) status = vec_write_planner(&w);
    if (status == 0) status = vec_write_scripts(&w);
    if (vw_close(&w) != 0)
        status = 1;
    return status;
}
