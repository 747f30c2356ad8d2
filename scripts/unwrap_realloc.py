#!/usr/bin/env python3
"""Unwrap a command module's exported `cabi_realloc`.

wasm-ld links a command (crt1-command.o, `_start`) so that every export runs the
C constructors first and the destructors after. For `cabi_realloc` that is fatal:
the canonical ABI calls it while lowering an import's result (a `list<u32>` from
wasi:io/poll, say), and wasi-libc's constructor that lists the preopened
directories calls an import from there, which the component model forbids
("cannot leave component instance"). So a guest with a volume trapped on its
first wasi:http or wasi:sockets call. This points the realloc exports at the
wrapped allocator itself.

Usage: unwrap_realloc.py IN.wat OUT.wat  (text from `wasm-tools print`); prints
how many exports it unwrapped (0: the module needs no change).
"""
import re
import sys

src = open(sys.argv[1]).read()
funcs = {}
for m in re.finditer(r"\(func \(;(\d+);\)[^\n]*\n((?:(?: {4,})[^\n]*\n)*?) *\)\n", src):
    funcs[m.group(1)] = [line.strip() for line in m.group(2).splitlines()]


def inner(n):
    """The allocator a command export wrapper around function n calls, if it is one."""
    body = funcs.get(n, [])
    if (len(body) == 7 and body[0].startswith("call ") and body[6].startswith("call ")
            and all(b.startswith("local.get ") for b in body[1:5]) and body[5].startswith("call ")):
        return body[5].split()[1]
    return None


count = 0


def fix(m):
    global count
    target = inner(m.group(2))
    if target is None:
        return m.group(0)
    count += 1
    return f'(export "{m.group(1)}" (func {target}))'


out = re.sub(r'\(export "(cabi_realloc[^"]*)" \(func (\d+)\)\)', fix, src)
open(sys.argv[2], "w").write(out)
print(count)
