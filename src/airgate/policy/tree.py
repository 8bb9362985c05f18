"""Walk a policy (or test suite) directory so that no file in it is ever skipped silently.

Symbolic links are followed, to files and to directories, inside the tree or outside
it: whoever can put a link into a policy directory can put the file itself there, so
a link grants nothing, and a shared folder linked into several packs is a real layout.
What cannot be followed is an error with the link's path, never a silent gap (a
missing exclusion would let an action run that the policy author meant to stop):

- a broken link (its target does not exist, or a chain of links that loops);
- a directory link that leads back to a directory the walk is already inside (a loop);
- a directory that cannot be listed, an entry that cannot be examined;
- an entry with a policy suffix that is not a regular file (a FIFO would block).

Hidden entries (``.git``, ``.venv``, ``.draft.yaml``) stay out of the walk, as before.
A directory reached twice without a loop (two links to one shared folder) is walked
once; its files are found on the first visit.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from airgate.errors import Finding, Location


@dataclass
class Tree:
    """The files a walk found (named under the top it started from) and its problems."""

    files: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def walk_tree(top: str, suffixes: tuple[str, ...]) -> Tree:
    """Every non-hidden file under ``top`` whose name ends in one of ``suffixes``, sorted
    per directory, following symbolic links; see the module docstring for the errors."""
    tree = Tree()
    _walk(top, suffixes, tree, chain=(os.path.realpath(top),), done=set())
    return tree


def _error(tree: Tree, code: str, message: str, path: str) -> None:
    tree.findings.append(Finding("error", code, message, Location(os.path.normpath(path))))


def _walk(directory: str, suffixes: tuple[str, ...], tree: Tree,
          chain: tuple[str, ...], done: set[str]) -> None:
    done.add(chain[-1])
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        _error(tree, "unreadable", f"cannot list directory: {exc.strerror}", directory)
        return
    subdirs: list[tuple[str, str]] = []
    for name in names:
        if name.startswith("."):
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.stat(path).st_mode  # follows links
        except FileNotFoundError:
            target = _target(path)
            _error(tree, "broken-link", f"broken symbolic link (to {target!r}, which does not"
                   " exist): its policies would be missing", path)
            continue
        except OSError as exc:
            # ELOOP (links that point at each other) and EACCES land here.
            what = "symbolic link loop" if os.path.islink(path) else "cannot examine"
            _error(tree, "broken-link" if os.path.islink(path) else "unreadable",
                   f"{what}: {exc.strerror}", path)
            continue
        if stat.S_ISDIR(mode):
            real = os.path.realpath(path)
            if real in chain:
                _error(tree, "link-loop", f"symbolic link loop: leads back to {real!r}, a"
                       " directory this walk is already inside", path)
            elif real not in done:
                subdirs.append((path, real))
        elif name.endswith(suffixes):
            if stat.S_ISREG(mode):
                tree.files.append(os.path.normpath(path))
            else:
                # Reading a FIFO or a socket named *.yaml would block the walk forever.
                _error(tree, "not-a-file", "not a regular file (a FIFO, socket or device)",
                       path)
    for path, real in subdirs:
        if real not in done:  # a sibling's link may have reached it meanwhile
            _walk(path, suffixes, tree, (*chain, real), done)


def _target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


__all__ = ["Tree", "walk_tree"]
