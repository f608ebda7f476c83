#!/usr/bin/env python3
"""Module-import cycles inside crates (issue 14: "no module-import cycle inside a crate").

For each crate directory given (default: every workspace member with a src/), every reference
`crate::X` in code (comments and #[cfg(test)] modules left out, `use crate::{a, b}` included) is
an edge from the top-level module of the file to the top-level module X. Prints each crate's
graph and its strongly connected components of more than one module; exits 1 if there is one.
Usage: scripts/module-cycles.py [CRATE_DIR...]
"""
import os
import re
import sys


def graph(src):
    edges = {}
    for dirpath, _, files in os.walk(src):
        for name in files:
            if not name.endswith('.rs'):
                continue
            path = os.path.join(dirpath, name)
            top = os.path.relpath(path, src).split(os.sep)[0].removesuffix('.rs')
            if top in ('lib', 'main'):
                top = 'lib'
            code = ''.join(line.split('//')[0] for line in open(path, encoding='utf-8'))
            code = re.split(r'#\[cfg\(test\)\]', code)[0]
            targets = set(re.findall(r'crate::([a-z_0-9]+)', code))
            for group in re.findall(r'crate::\{([^}]*)\}', code):
                targets |= set(re.findall(r'(?:^|[,\s{])([a-z_0-9]+)', group))
            targets -= {top, 'self'}
            edges.setdefault(top, set()).update(targets)
    return edges


def cycles(edges):
    nodes = sorted(set(edges) | {t for ts in edges.values() for t in ts})
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

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
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def main(dirs):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not dirs:
        dirs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, 'src')))
        dirs = [os.path.join(root, d) for d in dirs if d != 'fuzz']
    bad = False
    for d in dirs:
        edges = graph(os.path.join(d, 'src'))
        found = cycles(edges)
        print(f"{os.path.basename(os.path.normpath(d))}:")
        for node in sorted(edges):
            print(f"  {node} -> {', '.join(sorted(edges[node])) or '-'}")
        print(f"  cycles: {found if found else 'none'}")
        bad |= bool(found)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
