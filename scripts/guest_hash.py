"""Print the source hash of one built-in guest (see scripts/build-guests.sh).

sha256 over every source file, in sorted path order, each as
`path NUL content NUL`: the workspace's Cargo.toml and Cargo.lock, and the guest's
Cargo.toml and src/**. src/kubelet/images.rs (test) computes the same.
"""
import hashlib
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "guests"
name = sys.argv[1]
files = [root / "Cargo.toml", root / "Cargo.lock", root / name / "Cargo.toml"]
files += [p for p in (root / name / "src").rglob("*") if p.is_file()]
h = hashlib.sha256()
for p in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
    h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
print(h.hexdigest())
