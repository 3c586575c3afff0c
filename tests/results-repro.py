#!/usr/bin/env python3
"""results-repro.py: the numbers of doc/results.md, rerun (issue 23).

    results-repro.py KVREVIVER DOC [--model stories260K.bin] [--smollm2 MODEL.gguf] [--gemma3 MODEL.gguf]
                                   [--licences LICENCES.txt]

The licence-text tables need --licences: the four licence texts joined, as
doc/results.md prints (cat /usr/share/common-licenses/{GPL-3,Apache-2.0,MPL-2.0,GFDL-1.3}).

Each entry of TABLES names a table of DOC by its heading, the command that
made it (as DOC prints it) and what each column holds.  The command is run
with --csv, and every cell of the table is compared with the CSV: a number
printed with k significant digits must be the CSV's value rounded to them
(within half a unit of its last digit), "does not fit" must be a row the
planner refused (absent from the CSV), an interval "[lo, hi]" must hold
the CSV's Wilson bounds to its digits.  The tables are deterministic (fixed
seeds, one BLAS thread), so any difference is a change of the code that
the doc has not caught up with.  Exit 0 when every cell matches, 1 with the
cells that do not, 77 when an input is absent.
"""
import csv
import io
import os
import re
import subprocess
import sys

Q = ("h2o/store=q4,snapkv/store=q4,tova/store=q4,streaming/store=q4,kivi,kivi/bits=4,"
     "kvreviver-moment/store=q4,kvreviver/bits=4/store=q4,kvreviver/bits=2/store=q4,mikv,mikv/balance=0,"
     "kvreviver/body=2,kvreviver/body=3")

# heading -> (the inputs it needs, argument list with {model}, [(column header, csv field, budget)])
TABLES = [
    ("### stories260K, context 512, seeds 1-3 (mean), f16 bytes", ("model",),
     ["eval", "--workload", "model:{model}", "--context", "512", "--budget", "0.1,0.25", "--seeds", "3",
      "--elem", "f16", "--method", "all," + Q],
     [("top-1 10%", "top1_agree", "0.1"), ("KL 10%", "kl", "0.1"),
      ("top-1 25%", "top1_agree", "0.25"), ("KL 25%", "kl", "0.25")]),
    ("### synthetic, context 2048, seeds 1-3 (mean), f16 bytes", (),
     ["eval", "--workload", "synthetic", "--context", "2048", "--budget", "0.1,0.25", "--seeds", "3",
      "--elem", "f16", "--method", "all," + Q],
     [("attn_rel_err 10%", "attn_rel_err", "0.1"), ("attn_rel_err 25%", "attn_rel_err", "0.25")]),
    ("### needle, context 2048, seeds 1-3 (pooled, Wilson 95% interval), f16 bytes", (),
     ["eval", "--workload", "needle", "--context", "2048", "--budget", "0.1,0.25", "--seeds", "3",
      "--elem", "f16", "--method", "all," + Q],
     [("needles found [95%] 10%", "needle_acc", "0.1"), ("needles found [95%] 25%", "needle_acc", "0.25")]),
]
# the rotation lever's table (issue 24, spec §19.13): one heading, a command per workload
ROT = "### The rotation lever (`rotate=`, issue 24, spec §19.13), f16 bytes"
ROT_M = ("kvreviver,kvreviver/rotate=1,kvreviver/balance=1,kvreviver/balance=1/rotate=1,mikv,mikv/rotate=1")
TABLES += [
    (ROT, ("model",), ["eval", "--workload", "model:{model}", "--context", "512", "--budget", "0.1,0.25", "--seeds",
                       "3", "--elem", "f16", "--method", ROT_M],
     [("stories 10%", "top1_agree", "0.1"), ("stories 25%", "top1_agree", "0.25")]),
    (ROT, (), ["eval", "--workload", "synthetic", "--context", "2048", "--budget", "0.1,0.25", "--seeds", "3",
               "--elem", "f16", "--method", ROT_M],
     [("synthetic 10%", "attn_rel_err", "0.1"), ("synthetic 25%", "attn_rel_err", "0.25")]),
    (ROT, (), ["eval", "--workload", "needle", "--context", "2048", "--budget", "0.1,0.25", "--seeds", "3",
               "--elem", "f16", "--method", ROT_M],
     [("needle 25%", "needle_acc", "0.25")]),
]
PK = ("full,streaming,h2o,snapkv,snapkv/obs=16,tova,streaming/store=q4,h2o/store=q4,snapkv/store=q4,snapkv/obs=16/store=q4,tova/store=q4,kivi,kivi/bits=3,kivi/bits=4,kvreviver,kvreviver-moment,kvreviver-paper,kvreviver-moment/store=q4,kvreviver/bits=4/store=q4,kvreviver/bits=2/store=q4")
PK_ARGS = ["eval", "--workload", "model:{smollm2}", "--context", "1024", "--passkey", "30", "--forced", "0",
           "--budget", "0.1,0.25", "--elem", "f16", "--method", PK]
MK_ARGS = ["eval", "--workload", "model:{smollm2}", "--context", "1024", "--passkey", "30", "--forced", "0",
           "--budget", "0.25", "--elem", "f16", "--method", "full,mikv,mikv/balance=0"]
T_METHODS = ("full,streaming,h2o,snapkv,tova,streaming/store=q4,h2o/store=q4,snapkv/store=q4,tova/store=q4,"
             "kivi,kivi/bits=3,kivi/bits=4,mikv,kvreviver,kvreviver/body=2,kvreviver/body=3,kvreviver-moment,"
             "kvreviver-paper,kvreviver-mean,kvreviver-shrink,kvreviver-nocentre,kvreviver-moment/store=q4,"
             "kvreviver/bits=4/store=q4,kvreviver/bits=2/store=q4")
PK2 = PK.replace(",kvreviver,", ",mikv,kvreviver,kvreviver/body=2,kvreviver/body=3,")


def text_args(context):
    """The every-method licence-text tables (the text is {licences}, the four joined licences)."""
    return ["eval", "--workload", "model:{smollm2}", "--context", str(context), "--decode", "256",
            "--text", "{licences}", "--windows", "4", "--budget", "0.1,0.25", "--elem", "f16",
            "--method", T_METHODS]


TEXT_COLS = [("top-1 10%", "top1_agree", "0.1"), ("KL 10%", "kl", "0.1"), ("ppl 10%", "ppl", "0.1"),
             ("top-1 25%", "top1_agree", "0.25"), ("KL 25%", "kl", "0.25"), ("ppl 25%", "ppl", "0.25")]
PK2_ARGS = ["eval", "--workload", "model:{smollm2}", "--context", "2048", "--passkey", "30", "--forced", "0",
            "--budget", "0.1,0.25", "--elem", "f16", "--method", PK2]
SMOLLM2 = [
    ("### SmolLM2-135M-Instruct, real text, context 2048, every method, f16 bytes", ("smollm2", "licences"),
     text_args(2048), TEXT_COLS),
    ("### SmolLM2-135M-Instruct, real text, context 4096, every method, f16 bytes", ("smollm2", "licences"),
     text_args(4096), TEXT_COLS),
    ("### SmolLM2-135M-Instruct, passkey, context 2048, every method, f16 bytes", ("smollm2",), PK2_ARGS,
     [("10% in prompt", "passkey_acc", "0.1"), ("25% in prompt", "passkey_acc", "0.25")]),
    ("### SmolLM2-135M-Instruct, passkey, context 2048, every method, f16 bytes", ("smollm2",),
     PK2_ARGS + ["--late-question"],
     [("10% late", "passkey_acc", "0.1"), ("25% late", "passkey_acc", "0.25")]),
    ("### SmolLM2-135M-Instruct, passkey, context 1024, every method, f16 bytes", ("smollm2",), PK_ARGS,
     [("10% in prompt", "passkey_acc", "0.1"), ("25% in prompt", "passkey_acc", "0.25")]),
    ("### SmolLM2-135M-Instruct, passkey, context 1024, every method, f16 bytes", ("smollm2",),
     PK_ARGS + ["--late-question"],
     [("10% late", "passkey_acc", "0.1"), ("25% late", "passkey_acc", "0.25")]),
    ("### mikv on the passkey, context 1024, f16 bytes (issue 24)", ("smollm2",), MK_ARGS,
     [("25% in prompt", "passkey_acc", "0.25")]),
    ("### mikv on the passkey, context 1024, f16 bytes (issue 24)", ("smollm2",), MK_ARGS + ["--late-question"],
     [("25% late", "passkey_acc", "0.25")]),
    (ROT, ("smollm2", "licences"), [a.replace(T_METHODS, ROT_M) for a in text_args(2048)],
     [("text top-1 10%", "top1_agree", "0.1"), ("text KL 10%", "kl", "0.1"),
      ("text top-1 25%", "top1_agree", "0.25"), ("text KL 25%", "kl", "0.25")]),
    (ROT, ("smollm2",), [a.replace(PK, ROT_M) for a in PK_ARGS],
     [("pk 1k 10%", "passkey_acc", "0.1"), ("pk 1k 25%", "passkey_acc", "0.25")]),
    (ROT, ("smollm2",), [a.replace(PK, ROT_M) for a in PK_ARGS] + ["--late-question"],
     [("pk 1k 25% late", "passkey_acc", "0.25")]),
    (ROT, ("smollm2",), [a.replace(PK2, "mikv,mikv/rotate=1").replace("0.1,0.25", "0.25") for a in PK2_ARGS],
     [("pk 2k 25%", "passkey_acc", "0.25")]),
    (ROT, ("smollm2",), [a.replace(PK2, "mikv,mikv/rotate=1").replace("0.1,0.25", "0.25") for a in PK2_ARGS]
     + ["--late-question"], [("pk 2k 25% late", "passkey_acc", "0.25")]),
]


G1_ARGS = ["eval", "--workload", "model:{gemma3}", "--context", "1024", "--budget", "0.25", "--elem", "f16",
           "--threads", "1", "--method",
           "full,h2o,kvreviver,kvreviver-moment,kvreviver/balance=1,h2o/store=q4,kivi/bits=3,mikv/bits=4,kvreviver/body=2"]
G_METHODS = T_METHODS.replace(",kvreviver,", ",kvreviver,kvreviver/balance=1,")
G4_ARGS = [a.replace("{smollm2}", "{gemma3}").replace(T_METHODS, G_METHODS) for a in text_args(4096)]
G16_ARGS = [a.replace("{smollm2}", "{gemma3}").replace(T_METHODS, G_METHODS) for a in text_args(16384)]
G16_ARGS[G16_ARGS.index("--windows") + 1] = "1"   # the document holds one window of 16,384
GEMMA3 = [
    ("### Gemma 3 270M at 1k: why the default's tier fails on it (issue 28)", ("gemma3",), G1_ARGS,
     [("bytes (global layers)", "bytes_ratio", "0.25"), ("top-1", "top1_agree", "0.25"), ("KL", "kl", "0.25"),
      ("ppl", "ppl", "0.25")]),
    ("### Gemma 3 270M, real text, context 4096, every method, f16 bytes", ("gemma3", "licences"),
     G4_ARGS, TEXT_COLS),
    ("### Gemma 3 270M, real text, context 16384, every method, f16 bytes", ("gemma3", "licences"),
     G16_ARGS, TEXT_COLS),
    (ROT, ("gemma3", "licences"), [a.replace(G_METHODS, ROT_M) for a in G4_ARGS],
     [("Gemma top-1 10%", "top1_agree", "0.1"), ("Gemma KL 10%", "kl", "0.1"),
      ("Gemma top-1 25%", "top1_agree", "0.25"), ("Gemma KL 25%", "kl", "0.25")]),
]


def doc_table(doc, heading):
    """The markdown table under heading: header cells and {method: cells}."""
    at = doc.find(heading + "\n")
    if at < 0:
        return None, None
    body = doc[at + len(heading):]
    nxt = re.search(r"^#{2,3} ", body, re.M)
    if nxt:
        body = body[:nxt.start()]
    lines = [l for l in body.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for l in lines[2:]:
        cells = [c.strip() for c in l.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return header, rows


def matches(shown, value):
    """shown (as printed in the doc) equals value rounded to its digits."""
    m = re.fullmatch(r"-?(\d+)(?:\.(\d+))?(?:e([-+]\d+))?", shown)
    if not m:
        return False
    dec = len(m.group(2) or "")
    exp = int(m.group(3) or 0)
    half = 0.5 * 10.0 ** (exp - dec)
    return abs(float(shown) - value) <= half * (1 + 1e-9)


def check_cell(shown, row, field, problems, where):
    if shown == "not run":        # a cell the doc says was not run: the rerun has nothing to compare
        return
    if shown == "does not fit":   # the planner refused: no row, or a row with empty metrics
        if row is not None and row.get(field, "") != "":
            problems.append("%s: the doc says 'does not fit', the run has %s" % (where, row.get(field)))
        return
    if row is None:
        problems.append("%s: the doc shows %s, the run has no row" % (where, shown))
        return
    m = re.fullmatch(r"(\S+)(?: \[(\S+), (\S+)\])?", shown)
    parts = [(m.group(1), field)] if m else []
    if m and m.group(2):
        base = field[:-4] if field.endswith("_acc") else field
        parts += [(m.group(2), base + "_lo"), (m.group(3), base + "_hi")]
    for text, f in parts:
        if f not in row or row[f] == "":
            problems.append("%s: no %s in the run" % (where, f))
        elif text == "0" and float(row[f]) == 0.0:
            continue
        elif not matches(text, float(row[f])):
            problems.append("%s: the doc shows %s, the run gives %s = %s" % (where, text, f, row[f]))


def main():
    args = sys.argv[1:]
    kvr, doc_path = args[0], args[1]
    inputs = {"model": None, "smollm2": None, "licences": None, "gemma3": None}
    for i, a in enumerate(args):
        if a == "--model": inputs["model"] = args[i + 1]
        if a == "--smollm2": inputs["smollm2"] = args[i + 1]
        if a == "--licences": inputs["licences"] = args[i + 1]
        if a == "--gemma3": inputs["gemma3"] = args[i + 1]
    doc = open(doc_path, encoding="utf-8").read()
    tables = list(TABLES) + (SMOLLM2 if inputs["smollm2"] else []) + (GEMMA3 if inputs["gemma3"] else [])
    problems, checked, skipped = [], 0, 0
    for heading, needs, argv, cols in tables:
        if any(not (inputs[n] and os.path.exists(inputs[n])) for n in needs):
            print("# SKIP %s: no %s" % (heading, " or ".join(needs)))
            skipped += 1
            continue
        header, rows = doc_table(doc, heading)
        if header is None:
            problems.append("%s: not in %s" % (heading, doc_path))
            continue
        argv = [a.format(**{k: v or "" for k, v in inputs.items()}) for a in argv]
        out = subprocess.run([kvr] + argv + ["--csv", "-"], capture_output=True, text=True)
        if out.returncode not in (0, 1):
            problems.append("%s: kvreviver exited %d: %s" % (heading, out.returncode, out.stderr[-400:]))
            continue
        run = {}
        for r in csv.DictReader(io.StringIO(out.stdout)):
            run[(r["method"], r["budget"] if r["method"] != "full" else "full")] = r
        for method, cells in rows.items():
            for (col, field, budget) in cols:
                shown = cells[header.index(col)]
                key = (method, "full" if method == "full" else budget)
                row = run.get(key)
                if row is None and method != "full":
                    row = next((r for (m, b), r in run.items() if m == method and float(b) == float(budget)), None)
                check_cell(shown, row, field, problems, "%s | %s | %s" % (heading.lstrip("# "), method, col))
                checked += 1
    for p in problems:
        print("FAIL " + p)
    print("%d cells checked, %d differ, %d table(s) skipped" % (checked, len(problems), skipped))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
