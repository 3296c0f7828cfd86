#!/usr/bin/env python3
"""coverage_check.py GCOVR_JSON COVERAGE_MD: the lines a coverage run never executed must be the
lines docs/coverage.md lists, each with its reason.

docs/coverage.md lists them per file under a heading "### <path>" as items "- `<code>` — <reason>",
where <code> is the line's text without its indentation. Lines are matched by file and text, not
by number, so that edits elsewhere in a file do not invalidate the list; the same text listed
twice stands for two lines. Prints each line never run with its current number, and fails (exit
1) on a line never run that the document does not list, or a listed line that now runs.
"""
import collections
import json
import os
import re
import sys

ITEM = re.compile(r"^- `(?P<code>[^`]+)` — (?P<reason>\S.*)$")


def uncovered_lines(report_path, root_files):
    """(file, text) -> [line numbers] for every executable line with a count of 0."""
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    found = collections.defaultdict(list)
    for entry in report["files"]:
        path = entry["file"]
        source = root_files(path)
        for line in entry["lines"]:
            if line.get("gcovr/noncode") or line["count"] != 0:
                continue
            number = line["line_number"]
            found[(path, source[number - 1].strip())].append(number)
    return found


def documented_lines(doc_path):
    """(file, text) -> how many lines the document lists with that text, each with a reason."""
    listed = collections.Counter()
    current = None
    with open(doc_path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            text = text.rstrip("\n")
            if text.startswith("### "):
                current = text[4:].strip()
                continue
            if not text.startswith("- `"):
                continue
            match = ITEM.match(text)
            if match is None or current is None:
                sys.exit(f"{doc_path}:{number}: expected \"- `<code>` — <reason>\" under a \"### <file>\" heading")
            listed[(current, match["code"])] += 1
    return listed


def main():
    report_path, doc_path = sys.argv[1], sys.argv[2]
    root = os.path.dirname(os.path.dirname(os.path.abspath(doc_path)))  # the repository: DOC is docs/coverage.md
    cache = {}

    def root_files(path):
        if path not in cache:
            with open(f"{root}/{path}", encoding="utf-8") as f:
                cache[path] = f.read().split("\n")
        return cache[path]

    found = uncovered_lines(report_path, root_files)
    listed = documented_lines(doc_path)
    print(f"== lines never run in kernels/, ops/ and host/: {sum(len(v) for v in found.values())}")
    failed = False
    for (path, code), numbers in sorted(found.items(), key=lambda item: (item[0][0], item[1][0])):
        print(f"{path}:{','.join(map(str, numbers))}: {code}")
        if len(numbers) > listed[(path, code)]:
            print(f"  NOT in {doc_path}: add it with its reason, or a test that runs it")
            failed = True
    for (path, code), count in sorted(listed.items()):
        if count > len(found.get((path, code), [])):
            print(f"{path}: `{code}` is listed in {doc_path} but runs now (or is gone): remove it from the list")
            failed = True
    if failed:
        sys.exit(1)
    print(f"== every line never run is listed in {doc_path} with its reason")


if __name__ == "__main__":
    main()
