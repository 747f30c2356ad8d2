#!/usr/bin/env python3
"""Generates src/protobuf/messages.rs, the message table the protobuf decoder walks.

Usage:
    python3 tools/gen_messages.py --api DIR --apimachinery DIR --label v0.33.13 > src/protobuf/messages.rs

DIR are checkouts (or `git archive` extractions) of k8s.io/api and k8s.io/apimachinery at
the same tag. Two sources are read and cross-checked:

* `generated.proto`: message names, field numbers, proto types, repeated/map.
* the Go structs (`types.go` & co.) of the same package: the `json:"..."` tag (JSON name,
  omitempty, inline) and the Go type (pointer, slice, map), because the protobuf wire cannot
  say whether an empty string was "unset" or whether JSON would omit it; the JSON form is
  what Go's encoding/json would print after the apiserver decoded the protobuf.

Every message of the ROOT_PACKAGES, and every message they reach, lands in the table.
The script stops with an error on anything it does not understand, so a silent gap cannot
slip into the table.
"""

import argparse
import os
import re
import sys

# Packages whose every message is a root; (repo, dir inside the repo).
ROOT_PACKAGES = [
    ("apimachinery", "pkg/apis/meta/v1"),
    ("api", "core/v1"),
    ("api", "apps/v1"),
    ("api", "batch/v1"),
    ("api", "autoscaling/v1"),
    ("api", "autoscaling/v2"),
    ("api", "networking/v1"),
    ("api", "policy/v1"),
    ("api", "rbac/v1"),
    ("api", "scheduling/v1"),
    ("api", "storage/v1"),
    ("api", "coordination/v1"),
    ("api", "discovery/v1"),
    ("api", "events/v1"),
    ("api", "authorization/v1"),
    ("api", "authentication/v1"),
    ("api", "certificates/v1"),
]

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Messages whose JSON form is not an object, with the proto layout the decoder assumes.
SPECIAL = {
    META + "Time": ("Time", [("int64", "seconds", 1), ("int32", "nanos", 2)]),
    META + "MicroTime": ("MicroTime", [("int64", "seconds", 1), ("int32", "nanos", 2)]),
    META + "Duration": ("Duration", [("int64", "duration", 1)]),
    META + "FieldsV1": ("FieldsV1", [("bytes", "Raw", 1)]),
    "k8s.io.apimachinery.pkg.api.resource.Quantity": ("Quantity", [("string", "string", 1)]),
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": (
        "IntOrString",
        [("int64", "type", 1), ("int32", "intVal", 2), ("string", "strVal", 3)],
    ),
    "k8s.io.apimachinery.pkg.runtime.RawExtension": ("RawExtension", [("bytes", "raw", 1)]),
}
SCALARS = {"string": "Str", "bool": "Bool", "int32": "Int32", "int64": "Int64", "bytes": "Bytes"}


def fail(msg):
    sys.exit(f"gen_messages: {msg}")


class Proto:
    """One generated.proto: package, go dir, messages {name: {"fields": [...], "nullable": bool}}."""

    def __init__(self, path, godir):
        self.godir = godir
        self.messages = {}
        text = open(path, encoding="utf-8").read()
        m = re.search(r"^package ([\w.]+);", text, re.M)
        if not m:
            fail(f"{path}: no package")
        self.package = m.group(1)
        lines = text.split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^message (\w+) \{$", lines[i])
            if not m:
                if re.match(r"^\s*(enum|oneof|extend|service)\b", lines[i]):
                    fail(f"{path}:{i + 1}: unsupported construct")
                i += 1
                continue
            # Named Go slice types are wrapped in a message; go-to-protobuf marks them nullable.
            j = i - 1
            nullable = False
            while j >= 0 and lines[j].startswith("//"):
                nullable |= "+protobuf.nullable=true" in lines[j]
                j -= 1
            fields = []
            i += 1
            while lines[i] != "}":
                line = lines[i].strip()
                i += 1
                if not line or line.startswith("//"):
                    continue
                fm = re.match(r"^(optional|repeated) ([\w.]+) (\w+) = (\d+);$", line)
                mm = re.match(r"^map<(\w+), ([\w.]+)> (\w+) = (\d+);$", line)
                if fm:
                    label, ty, name, tag = fm.groups()
                elif mm:
                    key, ty, name, tag = mm.groups()
                    if key != "string":
                        fail(f"{path}: map key {key}")
                    label = "map"
                else:
                    fail(f"{path}:{i}: cannot parse {line!r}")
                fields.append({"label": label, "type": self.resolve(ty), "name": name, "tag": int(tag)})
            self.messages[m.group(1)] = {"fields": fields, "nullable": nullable}
            i += 1

    def resolve(self, ty):
        if ty in SCALARS:
            return ty
        if ty.startswith("."):
            return ty[1:]
        if "." in ty:
            fail(f"relative dotted type {ty}")
        return f"{self.package}.{ty}"


def go_structs(godir):
    """{struct: {proto tag: {"go": field name, "type": go type, "json": tag text, "pname": proto name}}}"""
    structs = {}
    for fname in sorted(os.listdir(godir)):
        if not fname.endswith(".go") or fname.endswith("_test.go") or "generated" in fname:
            continue
        lines = open(os.path.join(godir, fname), encoding="utf-8").read().split("\n")
        cur = None
        for line in lines:
            m = re.match(r"^type (\w+) metav1\.(\w+)$", line)
            if m:
                # A defined type over a meta/v1 struct (core/v1 List): same fields.
                structs[m.group(1)] = ("metav1", m.group(2))
                continue
            m = re.match(r"^type (\w+) struct ?\{(\}?)$", line)
            if m:
                cur = structs.setdefault(m.group(1), {})
                if m.group(2):  # `struct{}` on one line
                    cur = None
                continue
            if line == "}":
                cur = None
                continue
            if cur is None or "protobuf:\"" not in line or "protobuf:\"-\"" in line or line.lstrip().startswith("//"):
                continue
            fm = re.match(r"^\s*(?:(\w+)\s+)?(\S+)\s+`(.*)`\s*(//.*)?$", line)
            if not fm:
                fail(f"{godir}/{fname}: cannot parse struct field {line!r}")
            name, gotype, tags = fm.group(1), fm.group(2), fm.group(3)
            jm = re.search(r'json:"([^"]*)"', tags)
            pm = re.search(r'protobuf:"(\w+),(\d+)(?:,(?:opt|rep|req))?(?:,name=(\w+))?', tags)
            if not pm:
                fail(f"{godir}/{fname}: tags of {line!r}")
            cur[int(pm.group(2))] = {
                "go": name or gotype.lstrip("*").split(".")[-1],
                "type": gotype,
                # No json tag: a special type (Duration) whose JSON form is custom.
                "json": jm.group(1) if jm else "-",
                "pname": pm.group(3),
            }
    return structs


def load(args):
    protos = {}
    for repo, sub in walk_protos(args):
        root = getattr(args, repo)
        p = Proto(os.path.join(root, sub, "generated.proto"), os.path.join(root, sub))
        protos[p.package] = p
    return protos


def walk_protos(args):
    for repo in ("api", "apimachinery"):
        root = getattr(args, repo)
        for dirpath, _, files in os.walk(root):
            if "generated.proto" in files:
                yield repo, os.path.relpath(dirpath, root)


def group_of(godir):
    text = open(os.path.join(godir, "register.go"), encoding="utf-8").read()
    m = re.search(r'GroupName\s*=\s*"([^"]*)"', text)
    if not m:
        fail(f"{godir}: no GroupName")
    return m.group(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--apimachinery", required=True)
    ap.add_argument("--label", required=True, help="the tag both checkouts are at, for the header")
    args = ap.parse_args()
    protos = load(args)
    by_dir = {(repo, sub): None for repo, sub in ROOT_PACKAGES}
    for p in protos.values():
        for key in by_dir:
            if os.path.normpath(os.path.join(getattr(args, key[0]), key[1])) == os.path.normpath(p.godir):
                by_dir[key] = p
    missing = [k for k, v in by_dir.items() if v is None]
    if missing:
        fail(f"missing packages {missing}")

    def message(full):
        pkg, _, name = full.rpartition(".")
        if pkg not in protos or name not in protos[pkg].messages:
            fail(f"unknown message {full}")
        return protos[pkg], protos[pkg].messages[name]

    # Closure over message references.
    todo = [f"{p.package}.{n}" for p in by_dir.values() for n in p.messages]
    seen = set()
    while todo:
        full = todo.pop()
        if full in seen or full in SPECIAL:
            continue
        seen.add(full)
        _, msg = message(full)
        if msg["nullable"]:
            continue
        todo.extend(f["type"] for f in msg["fields"] if f["type"] not in SCALARS)

    for full, (_, layout) in SPECIAL.items():
        _, msg = message(full)
        got = [(f["type"], f["name"], f["tag"]) for f in msg["fields"]]
        if got != layout or any(f["label"] != "optional" for f in msg["fields"]):
            fail(f"{full}: layout {got} is not the expected {layout}")

    structs_cache = {}
    out_msgs = []
    renamed = []
    for full in sorted(seen):
        proto, msg = message(full)
        name = full.rpartition(".")[2]
        if msg["nullable"]:
            f = msg["fields"]
            if len(f) != 1 or (f[0]["label"], f[0]["type"], f[0]["name"]) != ("repeated", "string", "items"):
                fail(f"{full}: nullable wrapper of an unexpected shape")
            continue  # referenced as StringList, never walked as an object
        if proto.godir not in structs_cache:
            structs_cache[proto.godir] = go_structs(proto.godir)
        gofields = structs_cache[proto.godir].get(name)
        if isinstance(gofields, tuple):
            meta_dir = os.path.join(args.apimachinery, "pkg/apis/meta/v1")
            if meta_dir not in structs_cache:
                structs_cache[meta_dir] = go_structs(meta_dir)
            gofields = structs_cache[meta_dir].get(gofields[1])
        if gofields is None:
            fail(f"{full}: no Go struct {name} in {proto.godir}")
        tags = {f["tag"] for f in msg["fields"]}
        if set(gofields) != tags:
            fail(f"{full}: proto tags {sorted(tags)} vs Go tags {sorted(gofields)}")
        rows = []
        for f in msg["fields"]:
            g = gofields[f["tag"]]
            if g["pname"] not in (None, f["name"]):
                fail(f"{full}.{f['name']}: Go protobuf tag says {g['pname']}")
            rows.append(field_row(full, f, g, protos, renamed))
        out_msgs.append((full, rows))

    groups = []
    for (_, sub), p in by_dir.items():
        group, version = group_of(p.godir), os.path.basename(sub)
        groups.append((f"{group}/{version}" if group else version, p.package))
    emit(args.label, sorted(groups), out_msgs, renamed)


def field_row(full, f, g, protos, renamed):
    """(tag, json, ty, card, go) as Rust expressions."""
    json_name, *opts = g["json"].split(",")
    gotype = g["type"]
    label = f["label"]
    ty = f["type"]
    if "inline" in opts:
        if label != "optional" or ty in SCALARS or ty in SPECIAL or gotype.startswith("*"):
            fail(f"{full}.{f['name']}: inline of an unexpected kind")
        return (f["tag"], "", f'Msg("{ty}")', "Inline", "Value")
    if json_name in ("", "-"):
        fail(f"{full}.{f['name']}: json tag {g['json']!r} not handled")
    if json_name != f["name"]:
        renamed.append(f"{full}.{f['name']} -> {json_name}")
    omitempty = "omitempty" in opts
    if ty in SCALARS:
        rty = SCALARS[ty]
    elif ty in SPECIAL:
        rty = SPECIAL[ty][0]
    else:
        pkg, _, name = ty.rpartition(".")
        rty = "StringList" if protos[pkg].messages[name]["nullable"] else f'Msg("{ty}")'
    card = {"optional": "One", "repeated": "Repeated", "map": "Map"}[label]
    # Go's nil-able kinds: pointers, slices (incl. []byte and named slices), maps.
    collection = label != "optional" or ty == "bytes" or rty == "StringList"
    if gotype.startswith("*") or collection:
        go = "OmitEmpty" if omitempty and collection else ("Pointer" if omitempty else "Nullable")
    elif ty in SCALARS:
        go = "OmitEmpty" if omitempty else "Value"
    else:
        go = "Value"  # a struct: encoding/json never omits it
    return (f["tag"], json_name, rty, card, go)


def emit(label, groups, msgs, renamed):
    w = sys.stdout.write
    w("//! Message table for the protobuf decoder: GENERATED, do not edit.\n")
    w("//!\n")
    w(f"//! Source: `generated.proto` + Go struct tags of k8s.io/api and k8s.io/apimachinery {label}.\n")
    w("//! Regenerate (from the crate root, with both repositories checked out at that tag):\n")
    w("//! `python3 tools/gen_messages.py --api ../api --apimachinery ../apimachinery \\\n")
    w(f"//!     --label {label} > src/protobuf/messages.rs`\n")
    if renamed:
        w("//!\n//! Fields whose JSON name differs from the proto name:\n")
        for r in renamed:
            w(f"//! - `{r}`\n")
    w("\nuse super::schema::Card::*;\nuse super::schema::Go::*;\nuse super::schema::Ty::*;\n")
    w("use super::schema::{Message, f};\n\n")
    w("/// apiVersion → proto package of the kinds it serves (meta/v1 kinds are looked up as a fallback).\n")
    w("pub(super) static GROUPS: &[(&str, &str)] = &[\n")
    for gv, pkg in groups:
        w(f'    ("{gv}", "{pkg}"),\n')
    w("];\n\n")
    w("/// Every message, sorted by full proto name.\n")
    w("pub(super) static MESSAGES: &[Message] = &[\n")
    for full, rows in msgs:
        w(f'    Message {{ name: "{full}", fields: &[\n')
        for tag, json_name, rty, card, go in rows:
            w(f'        f({tag}, "{json_name}", {rty}, {card}, {go}),\n')
        w("    ] },\n")
    w("];\n")


if __name__ == "__main__":
    main()
