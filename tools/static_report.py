#!/usr/bin/env python3
"""The static performance report of every kernel instantiation on every built architecture.

Reads what the build left behind, the CUDA object files: cuobjdump -res-usage gives each kernel's
registers, stack, local memory and static shared memory per architecture; the occupancy tool
(tools/occupancy.cpp, CUDA's occupancy calculator) turns them into theoretical occupancy on sm_80
and sm_90; cuobjdump -sass shows whether the vector paths really issue 128-bit global loads and
stores (LDG.E.128 / STG.E.128). Writes report.json and report.md to --out, and fails (exit 1) on
any stack or local-memory use (spills) or on a vector path without 128-bit accesses, so that the
build fails with it. cuobjdump comes from the CUDA toolkit or the PyPI package
nvidia-cuda-cuobjdump (scripts/install_dependencies.sh installs it).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

# Each kernel family: the index of its VEC template argument (None: no vector path) and whether it
# stores activations (None: only in the gradient mode of a BatchNorm reduction), from the op
# registry.
REGISTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ops", "registry.json")
with open(REGISTRY) as registry:
    FAMILIES = {family: tuple(traits) for op in json.load(registry)["ops"] for family, traits in op["kernels"].items()}
ELEMENT_BYTES = {"float": 4, "__half": 2, "__nv_bfloat16": 2}

ARCH_LINE = re.compile(r"(?:arch = |code for )(sm_\d+)")
RESOURCE_FUNCTION = re.compile(r"^\s*Function (\S+):\s*$")
RESOURCES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")
INFO_SECTION = re.compile(r"^\.nv\.info\.(\S+)$")
HEX_VALUES = re.compile(r"Value:\s+((?:0x[0-9a-f]+\s*)+)$")


def split_template_arguments(name):
    """The top-level template arguments of the first template in a demangled name."""
    start = name.find("<")
    depth, current, out = 0, "", []
    for ch in name[start + 1:]:
        if ch == "<":
            depth += 1
        elif ch == ">":
            if depth == 0:
                out.append(current.strip())
                return out
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        current += ch
    return out


def element_bytes(template):
    """The size of the first element type among template arguments, searched depth first (the row
    kernels name it inside their load functor: DirectLoad<__half>); None if there is none."""
    for argument in template:
        if argument in ELEMENT_BYTES:
            return ELEMENT_BYTES[argument]
        if "<" in argument:
            nested = element_bytes(split_template_arguments(argument))
            if nested is not None:
                return nested
    return None


def family_of(demangled):
    base = demangled.split("<")[0].split("::")[-1].replace("void ", "")
    return base


def dump_lines(objects, cuobjdump, env, what, check=True):
    """(architecture, line) for each line of `cuobjdump <what>` of every object, the architecture
    that of the section the line is in; a line that starts a section comes as (architecture, None)."""
    for obj in objects:
        text = subprocess.run([cuobjdump, what, obj], capture_output=True, text=True, env=env, check=check).stdout
        arch = None
        for line in text.splitlines():
            m = ARCH_LINE.search(line)
            if m:
                arch = m.group(1)
                yield arch, None
            else:
                yield arch, line


def resource_usage(objects, cuobjdump, env):
    """One record per (kernel, architecture) from cuobjdump -res-usage of every object."""
    kernels = []
    function = None
    for arch, line in dump_lines(objects, cuobjdump, env, "-res-usage"):
        if line is None:
            function = None
            continue
        m = RESOURCE_FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        m = RESOURCES.search(line)
        if m and function:
            kernels.append({"mangled": function, "arch": arch, "registers": int(m.group(1)),
                            "stack": int(m.group(2)), "shared": int(m.group(3)), "local": int(m.group(4))})
            function = None
    return kernels


def launch_bounds(objects, cuobjdump, env):
    """{(mangled, arch): threads} from each kernel's EIATTR_MAX_THREADS (its __launch_bounds__)."""
    bounds = {}
    function, expect_value = None, False
    for arch, line in dump_lines(objects, cuobjdump, env, "-elf"):
        if line is None:
            function = None
            continue
        m = INFO_SECTION.match(line)
        if m:
            function = m.group(1)
            continue
        if "EIATTR_MAX_THREADS" in line:
            expect_value = True
            continue
        m = HEX_VALUES.search(line)
        if expect_value and m and function:
            x, y, z = (int(v, 16) for v in m.group(1).split())
            bounds[(function, arch)] = x * y * z
            expect_value = False
    return bounds


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def find_cuobjdump():
    """cuobjdump from PATH, or from the PyPI packages nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm."""
    found = shutil.which("cuobjdump")
    if found:
        return found, os.environ.copy()
    for site in sys.path:
        for candidate in glob.glob(os.path.join(site, "nvidia", "*", "bin", "cuobjdump")):
            env = os.environ.copy()
            env["PATH"] = os.path.dirname(candidate) + os.pathsep + env.get("PATH", "")
            return candidate, env
    return None, None


SASS_FUNCTION = re.compile(r"Function : (\S+)")
LOAD_128 = re.compile(r"\bLDG\.E(?:\.[A-Z0-9_]+)*\.128\b")
STORE_128 = re.compile(r"\bSTG\.E(?:\.[A-Z0-9_]+)*\.128\b")


def sass_vector_accesses(objects, cuobjdump, env):
    """{(mangled, arch): (has 128-bit load, has 128-bit store)} from every object's SASS."""
    found = {}
    function = None
    for arch, line in dump_lines(objects, cuobjdump, env, "-sass", check=False):
        if line is None:
            function = None
            continue
        m = SASS_FUNCTION.search(line)
        if m:
            function = m.group(1)
            found.setdefault((function, arch), [False, False])
            continue
        if function is None:
            continue
        if LOAD_128.search(line):
            found[(function, arch)][0] = True
        if STORE_128.search(line):
            found[(function, arch)][1] = True
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", nargs="+", required=True, help="object files of the CUDA translation units")
    parser.add_argument("--occupancy", required=True, help="the occupancy tool")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args()
    objects = [o for o in args.objects if o.endswith(".cu.o")]
    cuobjdump, env = find_cuobjdump()
    if not cuobjdump:
        print("static report: cuobjdump not found (install the PyPI package nvidia-cuda-cuobjdump "
              "or put the CUDA toolkit's bin on PATH)", file=sys.stderr)
        return 1
    kernels = resource_usage(objects, cuobjdump, env)
    for k, name in zip(kernels, demangle([k["mangled"] for k in kernels])):
        k["name"] = name
        k["family"] = family_of(name)
    sass = sass_vector_accesses(objects, cuobjdump, env)
    bounds = launch_bounds(objects, cuobjdump, env)
    problems, reported = [], []
    for k in kernels:
        if k["family"] not in FAMILIES:
            problems.append(f"{k['name']}: a kernel family the op registry does not list (ops/registry.json)")
            continue
        vec_index, stores = FAMILIES[k["family"]]
        threads = bounds.get((k["mangled"], k["arch"]))
        if threads is None:
            problems.append(f"{k['arch']} {k['name']}: no __launch_bounds__ (CUNORM_LAUNCH_BOUNDS)")
            continue
        k["threads"] = threads
        occupancy = subprocess.run([args.occupancy, str(threads), str(k["registers"]), str(k["shared"])],
                                   capture_output=True, text=True, check=True).stdout.split()
        k["occupancy_sm80"], k["occupancy_sm90"] = float(occupancy[0]), float(occupancy[1])
        k["resident_blocks_sm90"] = int(occupancy[3])
        if k["stack"] or k["local"]:
            problems.append(f"{k['arch']} {k['name']}: {k['stack']} bytes of stack, {k['local']} bytes of local memory")
        template = split_template_arguments(k["name"])
        element = element_bytes(template)
        vector = (vec_index is not None and element is not None and len(template) > vec_index and
                  template[vec_index].isdigit() and int(template[vec_index]) * element == 16)
        k["vector_path"] = vector
        if vector:
            load, store = sass.get((k["mangled"], k["arch"]), (False, False))
            # BatchNorm reductions store dx only in the gradient mode (BatchNormReduction 1).
            writes = stores if stores is not None else template[0].endswith("1")
            k["ldg128"], k["stg128"] = load, store
            if not load or (writes and not store):
                problems.append(f"{k['arch']} {k['name']}: vector path without 128-bit "
                                f"{'loads' if not load else 'stores'}")
        reported.append(k)
    kernels = reported
    kernels.sort(key=lambda k: (k["name"], k["arch"]))
    os.makedirs(args.out, exist_ok=True)
    summary = {
        "instantiations": len({k["name"] for k in kernels}),
        "architectures": sorted({k["arch"] for k in kernels}),
        "using_stack_or_local_memory": sum(1 for k in kernels if k["stack"] or k["local"]),
        "vector_paths": sum(1 for k in kernels if k["vector_path"]),
        "vector_paths_with_128_bit": sum(1 for k in kernels if k.get("ldg128")),
        "problems": problems,
    }
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"summary": summary, "kernels": kernels}, f, indent=1)
    with open(os.path.join(args.out, "report.md"), "w", encoding="utf-8") as f:
        f.write("# Static kernel report\n\n")
        f.write(f"{summary['instantiations']} kernel instantiations on {', '.join(summary['architectures'])}; "
                f"{summary['using_stack_or_local_memory']} use stack or local memory (spills); {summary['vector_paths_with_128_bit']} of {summary['vector_paths']} "
                f"vector-path compilations issue 128-bit global loads.\n"
                "Occupancy: theoretical, at the block size of the kernel's __launch_bounds__, static shared memory only "
                "(CUDA occupancy calculator, A100 = sm_80, H100 = sm_90).\n\n")
        f.write("| kernel | arch | threads | regs | stack | local | smem | occ sm_80 % | occ sm_90 % | LDG.128 | STG.128 |\n")
        f.write("|---|---|---|---|---|---|---|---|---|---|---|\n")
        for k in kernels:
            mark = lambda key: ("yes" if k.get(key) else "no") if k["vector_path"] else "-"
            f.write(f"| `{k['name'].replace('cunorm::kernels::', '')}` | {k['arch']} | {k['threads']} | "
                    f"{k['registers']} | {k['stack']} | {k['local']} | {k['shared']} | "
                    f"{k['occupancy_sm80']} | {k['occupancy_sm90']} | {mark('ldg128')} | {mark('stg128')} |\n")
    print(f"static report: {summary['instantiations']} kernels x {len(summary['architectures'])} architectures, "
          f"{summary['using_stack_or_local_memory']} using stack or local memory, {summary['vector_paths_with_128_bit']}/{summary['vector_paths']} vector "
          f"paths with 128-bit loads -> {args.out}/report.md")
    for p in problems:
        print("static report: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
