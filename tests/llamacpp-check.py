#!/usr/bin/env python3
"""llamacpp-check.py: the runtime beside llama.cpp (doc/model.md §8).

    llamacpp-check.py LM_DUMP MODEL.gguf WORKDIR TEXT...

1. Tokens: for every TEXT, the runtime's ids (lm-dump tokens) must equal
   llama.cpp's (Llama.tokenize, special tokens parsed, no BOS) exactly.
2. Logits: on the first 512 ids of the first TEXT (the prompt path for 256,
   then 256 decode steps), the runtime's full float32 cache against
   llama.cpp, twice:
   a. the weights rewritten to float32 (the gguf package's dequantization,
      which is the runtime's) and llama.cpp's cache in float32: the two then
      compute one function in float32 and differ only by rounding.  With
      u = 2^-24, products of length at most n (the feed-forward width), 7
      products in each of L layers, the random-walk rounding model gives a
      relative logit error of about u*sqrt(n*7*L); the bound asserted is 4
      times that, times the largest |logit|:  tol = 4 u sqrt(7 n L) max|z|.
      Asserted: every |dz| <= tol, every position's KL <= tol^2 / 2 (KL is
      about Var_p(dz)/2 <= max|dz|^2 / 2), top-1 equal wherever llama.cpp's
      two best logits are more than 2 tol apart.
   b. the file as users run it (llama.cpp's defaults: activations quantized
      to 8 bits in its quantized products, cache in float16).  What differs
      now is llama.cpp's own quantization, measured as llama.cpp's quantized
      run against its float32 run of (a).  With sqrt(KL) a distance to
      first order (the Fisher metric), per position
      sqrt KL(q8 || ours) <= sqrt KL(q8 || f32) + sqrt KL(f32 || ours);
      asserted on the means over positions, with 10% for the second-order
      terms.  Top-1 agreement, mean KL and both perplexities are printed.
Gemma 3 (general.architecture gemma3, doc/model.md §9): the ids of the
logits check start with BOS (the model is trained with it, its file says
add_bos_token), and there are 768 of them so that 256 positions lie past
the 512-token window of the local layers.  In (a) llama.cpp's GeLU is a
table indexed by the input rounded to float16 (GGML_GELU_FP16), its output
float16 too: a relative error up to u_h = 2^-11 on each of the n inputs of
the down projection, in each of L layers; the same random-walk model adds
u_h sqrt(L) to the relative error, so tol = 4 sqrt(7 n L u^2 + L u_h^2) max|z|.
Exit 0 when every assertion holds, 1 otherwise, 77 when a package is missing.
"""
import math
import os
import subprocess
import sys

try:
    import numpy as np
    from llama_cpp import Llama
except ImportError as e:
    print("SKIP: %s (scripts/install-llamacpp.sh installs llama-cpp-python and gguf)" % e)
    sys.exit(77)

N_IDS, N_PROMPT = 512, 256
U = 2.0 ** -24
U_H = 2.0 ** -11   # float16: llama.cpp's GeLU table (Gemma)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def llama(path, **kw):
    return Llama(model_path=path, n_ctx=N_IDS, n_batch=N_IDS, n_ubatch=N_IDS, logits_all=True, swa_full=True,
                 n_threads=min(4, os.cpu_count() or 1), verbose=False, **kw)


def llama_logits(path, ids, **kw):
    """llama.cpp's logits after positions N_PROMPT-1 .. len(ids)-1, float64."""
    m = llama(path, **kw)
    m.eval(ids)
    z = np.array(m.scores[:len(ids)], dtype=np.float64)[N_PROMPT - 1:]
    del m
    return z


def ours_logits(lm_dump, model, ids, work):
    ids_path, out = os.path.join(work, "ids.txt"), os.path.join(work, "ours.bin")
    with open(ids_path, "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")
    subprocess.run([lm_dump, "logits", model, ids_path, out, str(N_PROMPT)], check=True)
    return np.fromfile(out, dtype=np.float32).astype(np.float64)


def kl_rows(p_logits, q_logits):
    P, Q = log_softmax(p_logits), log_softmax(q_logits)
    return (np.exp(P) * (P - Q)).sum(-1)


def ppl(z, ids):
    lp = log_softmax(z)
    nxt = ids[N_PROMPT:]   # row r (position N_PROMPT-1+r) predicts ids[N_PROMPT+r]
    return math.exp(-np.mean([lp[r, t] for r, t in enumerate(nxt)]))


def to_f32(src, dst):
    """The model with every tensor dequantized to float32 (same metadata)."""
    import gguf
    from gguf.quants import dequantize
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"]
    w = gguf.GGUFWriter(dst, bytes(arch.parts[arch.data[0]]).decode())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.STRING:
            w.add_string(name, bytes(f.parts[f.data[0]]).decode("utf-8"))
        elif t == gguf.GGUFValueType.ARRAY:
            if f.types[1] == gguf.GGUFValueType.STRING:
                w.add_array(name, [bytes(f.parts[i]).decode("utf-8") for i in f.data])
            else:
                w.add_array(name, [f.parts[i].tolist()[0] for i in f.data])
        else:
            w.add_key_value(name, f.parts[f.data[0]].tolist()[0], t)
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape([int(x) for x in reversed(t.shape.tolist())]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return r


def main():
    global N_IDS
    lm_dump, model, work, texts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    fails = 0
    try:
        import gguf
        meta = gguf.GGUFReader(model)
        f = meta.fields["general.architecture"]
        arch = bytes(f.parts[f.data[0]]).decode()
        f = meta.fields.get("tokenizer.ggml.bos_token_id")
        bos = int(f.parts[-1][0]) if f is not None else 1
        del meta
    except ImportError:
        arch, bos = "llama", 1
    if arch == "gemma3":
        N_IDS = 768
    name = os.path.basename(model)
    vocab = llama(model)
    # ---- 1. tokens
    first_ids = None
    for path in texts:
        with open(path, "rb") as f:
            text = f.read()
        theirs = vocab.tokenize(text, add_bos=False, special=True)
        out = subprocess.run([lm_dump, "tokens", model, path], check=True, capture_output=True).stdout
        ours = [int(x) for x in out.split()]
        if first_ids is None:
            first_ids = ours
        if ours == theirs:
            print("ok tokens %s: %d ids, identical to llama.cpp's" % (os.path.basename(path), len(ours)))
        else:
            i = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
            print("FAIL tokens %s: ours %d ids, llama.cpp %d; first difference at %d: ours %s, llama.cpp %s (%r)"
                  % (os.path.basename(path), len(ours), len(theirs), i, ours[i:i + 4], theirs[i:i + 4],
                     vocab.detokenize(theirs[max(0, i - 3):i + 4])))
            fails += 1
    del vocab
    ids = ([bos] + first_ids)[:N_IDS] if arch == "gemma3" else first_ids[:N_IDS]
    if len(ids) < N_IDS:
        print("FAIL logits: the first text has %d ids, the check needs %d" % (len(ids), N_IDS))
        return 1
    ours = ours_logits(lm_dump, model, ids, work)
    # ---- 2a. float32 weights, float32 cache: rounding only
    try:
        import gguf  # noqa: F401
    except ImportError:
        print("SKIP: the gguf package is absent: no float32 comparison")
        return 77
    f32 = os.path.join(work, "f32.gguf")
    r = to_f32(model, f32)
    lc32 = llama_logits(f32, ids, type_k=0, type_v=0)   # GGML_TYPE_F32 cache
    os.unlink(f32)
    V = lc32.shape[1]
    ours = ours.reshape(-1, V)
    key = arch + ".feed_forward_length"
    n_ff = int(r.fields[key].parts[-1][0]) if key in r.fields else V
    n_layer = int(r.fields[arch + ".block_count"].parts[-1][0])
    gelu = U_H ** 2 * n_layer if arch == "gemma3" else 0.0
    tol = 4 * math.sqrt(U ** 2 * 7 * n_ff * n_layer + gelu) * np.abs(lc32).max()
    dz = np.abs(lc32 - ours).max()
    kl32 = kl_rows(lc32, ours)
    top2 = np.sort(lc32, -1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * tol
    agree = lc32.argmax(-1) == ours.argmax(-1)
    ok_a = dz <= tol and kl32.max() <= tol * tol / 2 and agree[clear].all()
    print("%s %s float32 weights and cache: max|dz| %.3g (tol %.3g), max KL %.3g (tol %.3g), mean KL %.3g, "
          "top-1 %.4f (%d of %d clear positions disagree), ppl llama.cpp %.4f ours %.4f"
          % ("ok" if ok_a else "FAIL", name, dz, tol, kl32.max(), tol * tol / 2, kl32.mean(), agree.mean(),
             int((~agree[clear]).sum()), int(clear.sum()), ppl(lc32, ids), ppl(ours, ids)))
    fails += not ok_a
    # ---- 2b. the file as users run it
    lcq = llama_logits(model, ids)
    klq = kl_rows(lcq, ours)
    bound = (np.sqrt(kl_rows(lcq, lc32)) + np.sqrt(np.maximum(kl32, 0))) ** 2
    ok_b = klq.mean() <= 1.1 * bound.mean()
    print("%s %s as llama.cpp runs it (8-bit activations, float16 cache): top-1 %.4f, mean KL %.3g "
          "(bound from llama.cpp's own quantization %.3g), ppl llama.cpp %.4f ours %.4f"
          % ("ok" if ok_b else "FAIL", name, (lcq.argmax(-1) == ours.argmax(-1)).mean(), klq.mean(),
             1.1 * bound.mean(), ppl(lcq, ids), ppl(ours, ids)))
    fails += not ok_b
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
