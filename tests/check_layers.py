#!/usr/bin/env python3
"""check_layers: fails when the modules of src/ include each other in a circle.

A module is a file's stem up to its first underscore (api.c, api_ui.c and api.h are
the module "api"); module A depends on B when a file of A has #include "x.h" and x.h
is a file of B. Files are src/*.[ch] and src/*/*.[ch] (the per-layer folders the
layout moves to), an include resolved by its file name, so "gguf.h" and
"model/gguf.h" are the same file. A circle (a strongly connected component of more
than one module) is printed with the includes that make it, and the exit status is 1.

It also checks that the layers (the folders of src/) depend one way: a file in a
folder may include headers of its own folder and of the folders LAYERS lets it see,
nothing else (docs/daemon.md has the picture). A folder not in LAYERS is refused.

    python3 tests/check_layers.py [SRC_DIR]    # check (default: src/ beside tests/)
    python3 tests/check_layers.py --graph      # also print the module graph
    python3 tests/check_layers.py --self-test  # the checker finds a circle it is given
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


# Each layer (folder of src/) and the layers below it that it may include.
LAYERS = {
    'base': [],
    'model': ['base'],
    'host': ['base'],
    'net': ['base'],
    'core': ['base', 'model', 'host', 'net'],
    'http': ['base', 'model', 'host', 'net', 'core'],
    'app': ['base', 'model', 'host', 'net', 'core', 'http'],
    'cli': ['base', 'model'],
}


def module_of(name):
    stem = os.path.splitext(os.path.basename(name))[0]
    return stem.split('_', 1)[0]


def source_files(src):
    out = []
    for d in [src] + sorted(os.path.join(src, e) for e in os.listdir(src)
                            if os.path.isdir(os.path.join(src, e))):
        for f in sorted(os.listdir(d)):
            if f.endswith(('.c', '.h')) and os.path.isfile(os.path.join(d, f)):
                out.append(os.path.join(d, f))
    return out


def graph(src):
    """{module: {module: [(file, include), ...]}} over the files of src."""
    files = source_files(src)
    known = {os.path.basename(f) for f in files}
    g = {}
    for f in files:
        m = module_of(f)
        g.setdefault(m, {})
        with open(f, encoding='utf-8', errors='replace') as fh:
            for inc in INCLUDE.findall(fh.read()):
                base = os.path.basename(inc)
                if base not in known:
                    continue  # generated or outside src/
                t = module_of(base)
                if t != m:
                    g[m].setdefault(t, []).append((os.path.relpath(f, src), inc))
    return g


def circles(g):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, {})):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def layer_errors(src):
    """Includes that go against LAYERS (upward or sideways), and unknown folders."""
    files = source_files(src)
    where = {os.path.basename(f): os.path.basename(os.path.dirname(f))
             for f in files if os.path.dirname(f) != src}
    bad = []
    for layer in sorted(set(where.values())):
        if layer not in LAYERS:
            bad.append('src/%s/ is no layer (tests/check_layers.py LAYERS)' % layer)
    for f in files:
        if os.path.dirname(f) == src:
            continue
        layer = os.path.basename(os.path.dirname(f))
        with open(f, encoding='utf-8', errors='replace') as fh:
            for inc in INCLUDE.findall(fh.read()):
                t = where.get(os.path.basename(inc))
                if t is None or t == layer or t in LAYERS.get(layer, []):
                    continue
                bad.append('%s (layer %s) includes "%s" of layer %s' %
                           (os.path.relpath(f, src), layer, inc, t))
    return bad


def check(src, show_graph=False):
    bad_layers = layer_errors(src)
    for e in bad_layers:
        print('check_layers: ' + e)
    g = graph(src)
    if show_graph:
        for m in sorted(g):
            print('%s -> %s' % (m, ', '.join(sorted(g[m])) or '(nothing)'))
    found = circles(g)
    for comp in found:
        print('check_layers: modules include each other in a circle: %s' % ', '.join(comp))
        for a in comp:
            for b in comp:
                for f, inc in g[a].get(b, []):
                    print('  %s -> %s: %s includes "%s"' % (a, b, f, inc))
    if not found:
        print('check_layers: %d modules, no include circle' % len(g))
    return 1 if found or bad_layers else 0


def self_test():
    """A tree with a circle across folders (a -> b -> c_x -> a) must fail; without
    the closing include it must pass."""
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, 'http'))
        os.makedirs(os.path.join(d, 'model'))
        files = {'a.c': '#include "a.h"\n#include "http/b.h"\n', 'a.h': '',
                 'http/b.h': '#include "c_x.h"\n', 'model/c_x.h': '#include "a.h"\n',
                 'model/c.c': '#include <stdio.h>\n#include "gen.h"\n'}
        for name, text in files.items():
            with open(os.path.join(d, name), 'w') as fh:
                fh.write(text)
        if check(d) != 1:
            print('self-test: the circle a -> b -> c -> a was not found')
            return 1
        with open(os.path.join(d, 'model/c_x.h'), 'w') as fh:
            fh.write('')
        if check(d) != 0:
            print('self-test: a tree without a circle was refused')
            return 1
        with open(os.path.join(d, 'http/z.h'), 'w') as fh:
            fh.write('')
        with open(os.path.join(d, 'model/c_x.h'), 'w') as fh:
            fh.write('#include "z.h"\n')   # model includes http: upward, no circle
        if check(d) != 1:
            print('self-test: model including http was not refused')
            return 1
        with open(os.path.join(d, 'model/c_x.h'), 'w') as fh:
            fh.write('')
    print('check_layers: self-test passed')
    return 0


def main(argv):
    args = [a for a in argv[1:] if not a.startswith('--')]
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            '..', 'src')
    if '--self-test' in argv:
        if self_test() != 0:
            return 1
    return check(os.path.normpath(src), '--graph' in argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
