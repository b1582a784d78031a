#!/usr/bin/env python3
"""Module graph of src/: which top-level module refers to which (`crate::X`),
and its strongly connected components (cycles). Exit 1 when any cycle exists.

Usage: python3 scripts/modgraph.py [--edges]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def top_module(path):
    rel = os.path.relpath(path, SRC)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_tests(text):
    # Unit tests may use anything; only non-test code counts.
    m = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    return text[: m.start()] if m else text


def refs(text):
    found = set()
    text = re.sub(r"//[^\n]*", "", text)
    for m in re.finditer(r"\bcrate::(\{[^}]*\}|\w+)", text):
        item = m.group(1)
        if item.startswith("{"):
            for part in re.findall(r"(?:^|[{,])\s*(\w+)", item):
                found.add(part)
        else:
            found.add(item)
    return found


def graph():
    mods = set()
    edges = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            mod = top_module(path)
            if mod in ("main", "lib"):
                continue
            mods.add(mod)
            with open(path, encoding="utf-8") as fh:
                text = strip_tests(fh.read())
            edges.setdefault(mod, set())
            edges[mod] |= refs(text)
    for m in edges:
        edges[m] = {t for t in edges[m] if t in mods and t != m}
    return mods, edges


def sccs(mods, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def main():
    mods, edges = graph()
    if "--edges" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m]))}")
    cycles = sccs(mods, edges)
    for c in cycles:
        inner = {m: sorted(edges[m] & set(c)) for m in c}
        print(f"cycle of {len(c)}: {', '.join(c)}")
        for m in c:
            print(f"  {m} -> {', '.join(inner[m])}")
    if not cycles:
        print("no cycles among top-level modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
