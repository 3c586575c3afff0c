#!/usr/bin/env python3
"""llamacpp-passkey.py: the passkey trials of doc/model.md §4.3 in llama.cpp
on our ids (doc/model.md §9).  Not in make check: it needs llama-cpp-python
(scripts/install-llamacpp.sh) and a GGUF model, and takes minutes a trial.

    llamacpp-passkey.py LM_DUMP MODEL.gguf CONTEXT N ELEM [TRIAL...]

For every TRIAL of N (default all), seed 1 as `kvreviver eval` uses by
default: `lm-dump passkey` gives the prompt's ids exactly as
ev_passkey_prompt builds them (BOS, the document, the question) and the
full cache's greedy answer in ELEM (the eval's own stopping rule); llama.cpp
(Llama, n_threads=1, its defaults: float16 cache, 8-bit activations in its
quantized products) evaluates the same ids and decodes greedily the same
way: up to 12 tokens, the argmax (the lowest id on ties), stopping at EOS
or the chat's end of turn; a trial is answered when the decoded text holds
the key.  One line a trial: the key, the prompt's length, whether llama.cpp
answers, whether ours does, whether the answer ids are equal, both texts.
Ours runs beside llama.cpp (a second process, one thread each).
Exit 0 when both ran on every trial, 1 otherwise, 77 without the package.
"""
import os
import subprocess
import sys
import time

try:
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama
except ImportError as e:
    print("SKIP: %s (scripts/install-llamacpp.sh installs llama-cpp-python)" % e)
    sys.exit(77)

ANSWER = 12   # EV_PASSKEY_ANSWER
SEED = 1      # kvreviver eval's default seed


def parse(out):
    r = {}
    for line in out.decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(" ")
        r[k] = v
    r["prompt"] = [int(x) for x in r["prompt"].split()]
    r["answer"] = [int(x) for x in r.get("answer", "").split()]
    r["answered"] = r["answered"] == "1"
    return r


def ours_start(lm_dump, model, context, n, trial, elem):
    return subprocess.Popen([lm_dump, "passkey", model, str(context), str(n), str(trial), str(SEED), elem],
                            stdout=subprocess.PIPE)


def llama_answer(m, ids, stop):
    m.reset()
    m.eval(ids)
    V = m.n_vocab()
    out, rows = [], []
    for step in range(ANSWER):
        z = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(m.ctx, -1), shape=(V,)).copy()
        rows.append(z)
        best = int(np.argmax(z))   # the first maximum, as ours
        if best in stop:
            break
        out.append(best)
        if step + 1 == ANSWER:
            break
        m.eval([best])
    return out, rows


def main():
    lm_dump, model, context, n, elem = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    trials = [int(t) for t in sys.argv[6:]] or list(range(n))
    m = Llama(model_path=model, n_ctx=context + 2 * ANSWER, n_batch=512, n_ubatch=512, swa_full=True,
              n_threads=1, n_threads_batch=1, verbose=False)
    stop = {m.token_eos()}
    for name in ("<end_of_turn>", "<|im_end|>"):
        t = m.tokenize(name.encode(), add_bos=False, special=True)
        if len(t) == 1:
            stop.add(t[0])
    right_l = right_o = same = ran = 0
    t0 = time.time()
    print("# %s, context %d, %d trials of %d, seed %d, ours in %s; stop ids %s"
          % (os.path.basename(model), context, len(trials), n, SEED, elem, sorted(stop)), flush=True)
    for trial in trials:
        t1 = time.time()
        p = ours_start(lm_dump, model, context, n, trial, elem)
        head = p.stdout.readline() + p.stdout.readline()   # key, prompt: printed before its prefill
        try:
            o = parse(head + b"answered 0\n")
        except (KeyError, ValueError):
            p.communicate()
            print("FAIL trial %d: lm-dump passkey exited %d" % (trial, p.returncode), flush=True)
            continue
        key = o["key"]
        la, rows = llama_answer(m, o["prompt"], stop)
        lt = m.detokenize(la).decode("utf-8", "replace").replace("\n", " ")
        rest, _ = p.communicate()
        if p.returncode != 0:
            print("FAIL trial %d: lm-dump passkey exited %d" % (trial, p.returncode), flush=True)
            continue
        o = parse(head + rest)
        ok_l = key in lt
        ran += 1
        right_l += ok_l
        right_o += o["answered"]
        same += la == o["answer"]
        print("trial %d: key %s, %d prompt ids, llama.cpp %s, ours %s, answer ids %s; llama.cpp \"%s\", ours \"%s\" "
              "(%.0f s)" % (trial, key, len(o["prompt"]), "answers" if ok_l else "misses",
                            "answers" if o["answered"] else "misses", "equal" if la == o["answer"] else "DIFFER",
                            lt, o.get("text", ""), time.time() - t1), flush=True)
        if la != o["answer"]:
            # the first step where they part, and by how much llama.cpp's
            # logits prefer its token to ours there
            ob = o["answer"]
            i = next((i for i, (a, b) in enumerate(zip(la, ob)) if a != b), min(len(la), len(ob)))
            z = rows[i] if i < len(rows) else None
            mine = ob[i] if i < len(ob) else None
            gap = "" if z is None or mine is None else ", llama.cpp's logit margin over ours %.3g" % (
                z.max() - z[mine])
            print("  first difference at answer token %d%s\n  llama.cpp ids %s\n  ours      ids %s"
                  % (i, gap, la, ob), flush=True)
    print("llama.cpp answers %d of %d, ours %d of %d, answer ids equal in %d of %d (%.0f s)"
          % (right_l, ran, right_o, ran, same, ran, time.time() - t0))
    return 0 if ran == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
