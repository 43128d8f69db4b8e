#!/usr/bin/env python3
"""Put llama-relay's stage hooks around the layer loop of every splittable architecture.

Usage: stage-loops.py LLAMA_CPP_TREE [--archs-json PATH]

A graph builder is splittable when its constructor has the common decoder layer loop:

    for (int il = 0; il < n_layer; ++il) {
        ...
        inpL = cur;
    }
    cur = inpL;

The loop then runs over this rank's layer range only, `stage_in` swaps the embeddings for the hidden
state that arrives from upstream (on non-head ranks), and `stage_out` ends a worker's graph after its
last layer (or, on the head, sends the hidden state and receives the last rank's rows before the
output norm). The list of patched builders, and the reasons the others cannot be split (DENY), are
written to src/llama-stage-archs.cpp, which the runtime uses to refuse an architecture at start-up,
and with --archs-json to llama-relay's src/plan/splittable-archs.json, which the planner reads.

The edit is mechanical and idempotent; on a new pin, rerun it and regenerate the patch (see
patches/README.md).
"""
import os
import re
import sys

LOOP = "    for (int il = 0; il < n_layer; ++il) {"

# The one list of reasons an architecture cannot be split. This script writes it, with the list of
# splittable architectures, into the generated C++ (src/llama-stage-archs.cpp: the engine's refusal at
# start-up) and into llama-relay's src/plan/splittable-archs.json (the planner's and `discover`'s
# refusal), so the two always say the same thing.
# Builders listed here would match the loop pattern textually (or nearly) but carry state besides the
# residual stream, or are not causal decoders.
EMBEDDINGS = "encoder-only (embedding) model: the engine splits causal decoders"
DIFFUSION = "diffusion model: it decodes non-causally"
DENY = {
    "gemma3n.cpp": "per-layer embeddings and KV reuse across layers",
    "gemma3n-iswa.cpp": "per-layer embeddings and KV reuse across layers",
    "gemma4.cpp": "per-layer embeddings and KV reuse across layers",
    "gemma4-iswa.cpp": "per-layer embeddings and KV reuse across layers",
    "deepseek4.cpp": "multi-stream state across layers",
    "qwen4exp.cpp": "multi-stream state across layers",
    "kimi-k3.cpp": "multi-stream state across layers",
    "qwen3vl.cpp": "deepstack image features are added to the hidden state of its early layers",
    "qwen3vl-moe.cpp": "deepstack image features are added to the hidden state of its early layers",
    "qwen3vlmoe.cpp": "deepstack image features are added to the hidden state of its early layers",
    "lfm2.cpp": "its layer loop carries state besides the residual stream",
    "t5.cpp": "encoder-decoder model: the engine splits causal decoders",
    "t5-dec.cpp": "encoder-decoder model: the engine splits causal decoders",
    "t5-enc.cpp": "encoder-decoder model: the engine splits causal decoders",
    "t5encoder.cpp": EMBEDDINGS,
    "bert.cpp": EMBEDDINGS,
    "eurobert.cpp": EMBEDDINGS,
    "modern-bert.cpp": EMBEDDINGS,
    "neo-bert.cpp": EMBEDDINGS,
    "nomic-bert.cpp": EMBEDDINGS,
    "nomic-bert-moe.cpp": EMBEDDINGS,
    "jina-bert-v2.cpp": EMBEDDINGS,
    "jina-bert-v3.cpp": EMBEDDINGS,
    "gemma-embedding.cpp": EMBEDDINGS,
    # a causal decoder (openPangu-Embedded) that matches the loop; not yet compared with stock on a chain
    "pangu-embed.cpp": "not yet checked against stock llama-server on a chain",
    "dream.cpp": DIFFUSION,
    "llada.cpp": DIFFUSION,
    "llada-moe.cpp": DIFFUSION,
    "rnd1.cpp": DIFFUSION,
}
# every other architecture the script does not patch: its builder has another loop shape
OTHERWISE = "its graph does not follow the common decoder layer loop the engine splits"


def patch_file(path):
    with open(path) as f:
        lines = f.read().split("\n")
    if any("stage_il_begin()" in l for l in lines):
        return "already", classes_of(lines)
    idx = [i for i, l in enumerate(lines) if l == LOOP]
    if len(idx) != 1:
        return "no-loop" if not idx else "several-loops", []
    start = idx[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i] == "    }"), None)
    if end is None:
        return "no-end", []
    body = [l for l in lines[start + 1:end] if l.strip() and not l.strip().startswith("//")]
    if not body or body[-1].strip() != "inpL = cur;":
        return "body-does-not-end-with-inpL", []
    after = next((l for l in lines[end + 1:] if l.strip()), "")
    if after.strip() != "cur = inpL;":
        return "no-cur-after-loop", []
    pruned = any("il == n_layer - 1" in l and "inp_out_ids" in l for l in lines[start:end])
    lines[start:start + 1] = [
        "    inpL = stage_in(inpL); // llama-relay: hidden state from upstream on non-head ranks",
        "    for (int il = stage_il_begin(); il < stage_il_end(); ++il) {",
    ]
    end += 1
    lines.insert(end + 1, "    if (stage_out(inpL, %s)) { return; } // llama-relay: a worker's graph ends here" % ("true" if pruned else "false"))
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return "patched", classes_of(lines)


def classes_of(lines):
    out = []
    for l in lines:
        m = re.match(r"^(llama_model_\w+)::graph(<[^>]*>)?::graph\(", l)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


def classes_defined(text):
    """Model classes with a member defined in a builder file (some define their graph elsewhere)."""
    return set(re.findall(r"^\S[^\n(]*?\b(llama_model_\w+)::", text, re.M))


def arch_names(tree, classes):
    """GGUF architecture names whose model class is one of `classes` (llama-model.cpp + llama-arch.cpp)."""
    with open(os.path.join(tree, "src", "llama-model.cpp")) as f:
        mapping = re.findall(r"case (LLM_ARCH_\w+):\s*return new (llama_model_\w+)\(", f.read())
    with open(os.path.join(tree, "src", "llama-arch.cpp")) as f:
        names = dict(re.findall(r"\{\s*(LLM_ARCH_\w+),\s*\"([^\"]+)\"\s*\}", f.read()))
    return sorted({names[e] for e, c in mapping if c in classes and e in names})


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_cpp(path, patched, reasons):
    with open(path, "w") as f:
        f.write("// Generated by llama-relay patches/tools/stage-loops.py: the graph builders that carry the stage hooks,\n")
        f.write("// and why the others cannot be split (the same text as llama-relay's src/plan/splittable-archs.json).\n")
        f.write('#include "llama-stage.h"\n#include "models/models.h"\n\n#include <cstring>\n\n')
        f.write("bool llama_stage_arch_splittable(const llama_model & model) {\n")
        for c in patched:
            f.write("    if (dynamic_cast<const %s *>(&model)) { return true; }\n" % c)
        f.write("    return false;\n}\n\n")
        f.write("const char * llama_stage_unsplittable_reason(const char * arch) {\n")
        f.write("    static const char * const reasons[][2] = {\n")
        for a in sorted(reasons):
            f.write("        {%s, %s},\n" % (c_string(a), c_string(reasons[a])))
        f.write("    };\n")
        f.write("    for (const auto & r : reasons) {\n")
        f.write("        if (strcmp(r[0], arch) == 0) { return r[1]; }\n")
        f.write("    }\n")
        f.write("    return %s;\n}\n" % c_string(OTHERWISE))


def main():
    tree = sys.argv[1]
    archs_json = sys.argv[sys.argv.index("--archs-json") + 1] if "--archs-json" in sys.argv else None
    models = os.path.join(tree, "src", "models")
    patched, skipped, skipped_classes = [], {}, {}
    for name in sorted(os.listdir(models)):
        if not name.endswith(".cpp"):
            continue
        path = os.path.join(models, name)
        if name in DENY:
            skipped[name] = "deny-list"
        else:
            status, classes = patch_file(path)
            if status in ("patched", "already") and classes:
                patched.extend(c for c in classes if c not in patched)
                continue
            skipped[name] = status
        with open(path) as f:
            skipped_classes[name] = classes_defined(f.read())
    splittable = arch_names(tree, set(patched))
    # each architecture that is not splittable gets its builder file's reason (the deny list's, or OTHERWISE)
    reasons = {}
    for name, classes in sorted(skipped_classes.items()):
        for arch in arch_names(tree, classes - set(patched)):
            if arch not in splittable and name in DENY:
                reasons[arch] = DENY[name]
    write_cpp(os.path.join(tree, "src", "llama-stage-archs.cpp"), patched, reasons)
    if archs_json:
        import json
        with open(archs_json, "w") as f:
            json.dump({"generatedBy": "patches/tools/stage-loops.py", "architectures": splittable,
                       "unsplittable": dict(sorted(reasons.items())), "otherwise": OTHERWISE}, f, indent=1)
            f.write("\n")
    print("stage-loops: %d builders patched, %d files skipped" % (len(patched), len(skipped)), file=sys.stderr)
    for k, v in sorted(skipped.items()):
        print("  skipped %-32s %s" % (k, v), file=sys.stderr)


if __name__ == "__main__":
    main()
