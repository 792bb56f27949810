"""The researcher's workspace: a git repository holding only the editable pipeline and a frozen program.md.

Why the git directory lives *outside* the work tree (``<run>/pipeline.git``):
a researcher that could write ``.git/hooks`` or ``.git/config`` (``core.fsmonitor``,
``core.hooksPath``) would run code in the harness's own process the next time
it commits. Every git call also disables hooks and ignores user/system config.

Experiments are measured from a *commit* (``snapshot``), not from the live
directory: what was measured is exactly what a keep adopts, and edits made
while a measurement runs are never adopted unmeasured. Discard is
``reset --hard`` to the incumbent plus ``clean -fdx`` (untracked and ignored
files too), so nothing of a rejected edit survives. Every experiment commit
stays reachable under ``refs/experiments/<n>`` for audit.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from synthloop.autoresearch.pipeline import DEFAULT_FILES, EDITABLE

PROGRAM_FILE = "program.md"
FROZEN_IN_WORKSPACE = (PROGRAM_FILE,)
MAX_FILE_CHARS = 200_000


class Refused(Exception):
    """An action the rules forbid (path outside the workspace, a frozen file, a bad snapshot)."""

    def __init__(self, action: str, path: str, reason: str) -> None:
        super().__init__(f"refused {action} {path!r}: {reason}")
        self.action = action
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Snapshot:
    """A measured state of the workspace: its commit and the pipeline files' text at that commit."""

    commit: str
    files: dict[str, str]


class Workspace:
    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root.resolve()
        self.git_dir = git_dir.resolve()

    # ------------------------------------------------------------------ git plumbing
    def git(self, *args: str, check: bool = True) -> str:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_DIR": str(self.git_dir),
               "GIT_WORK_TREE": str(self.root), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
               "HOME": str(self.git_dir), "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
        cmd = ["git", "-c", f"core.hooksPath={os.devnull}", "-c", "core.fsmonitor=false", "-c", "user.name=synthloop",
               "-c", "user.email=autoresearch@synthloop.invalid", "-c", "commit.gpgsign=false", *args]
        r = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, check=False)
        if check and r.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    @classmethod
    def create(cls, root: Path, git_dir: Path, program: str, files: dict[str, str] | None = None) -> Workspace:
        """A fresh repository with the starting pipeline and program.md in its first commit."""
        root.mkdir(parents=True, exist_ok=False)
        ws = cls(root, git_dir)
        ws.git("init", "-q", "-b", "main")
        for rel, text in {**DEFAULT_FILES, **(files or {}), PROGRAM_FILE: program}.items():
            p = ws.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        ws.git("add", "-A")
        ws.git("commit", "-q", "-m", "starting pipeline")
        return ws

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def diff(self, a: str, b: str) -> str:
        return self.git("diff", "--no-color", "--no-ext-diff", a, b)

    # ------------------------------------------------------------------ researcher file access
    def resolve(self, rel: str, action: str) -> Path:
        """The absolute path of ``rel`` inside the workspace, or :class:`Refused` (traversal, .git, symlinks)."""
        if not isinstance(rel, str) or not rel or "\0" in rel:
            raise Refused(action, str(rel), "empty or malformed path")
        if os.path.isabs(rel):
            raise Refused(action, rel, "absolute paths are outside the workspace")
        p = (self.root / rel)
        real = p.resolve()
        if real != self.root and self.root not in real.parents:
            raise Refused(action, rel, "path leaves the workspace")
        if ".git" in Path(rel).parts:
            raise Refused(action, rel, "version-control internals are not part of the workspace")
        return p

    def list_files(self) -> list[str]:
        out = []
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out.append(p.relative_to(self.root).as_posix())
        return out

    def read(self, rel: str) -> str:
        p = self.resolve(rel, "read")
        if p.is_symlink() or not p.is_file():
            raise Refused("read", rel, "no such regular file in the workspace")
        return p.read_text(errors="replace")[:MAX_FILE_CHARS]

    def write(self, rel: str, content: str) -> None:
        """Replace an editable pipeline file. Frozen and unknown files are refused (no dead files)."""
        p = self.resolve(rel, "write")
        norm = Path(rel).as_posix()
        if norm in FROZEN_IN_WORKSPACE:
            raise Refused("write", rel, f"{norm} is frozen (it states the rules)")
        if norm not in EDITABLE:
            raise Refused("write", rel, f"not an editable pipeline file; editable: {', '.join(EDITABLE)}")
        if not isinstance(content, str) or len(content) > MAX_FILE_CHARS:
            raise Refused("write", rel, f"content must be text of at most {MAX_FILE_CHARS} characters")
        if p.is_symlink():
            p.unlink()
        p.write_text(content)

    # ------------------------------------------------------------------ measurement and decisions
    def snapshot(self, n: int, message: str, incumbent: str, program_text: str) -> Snapshot:
        """Commit the current tree as experiment ``n`` (off-branch); refuse trees that break the rules."""
        self.git("add", "-A")
        tree = self.git("write-tree").strip()
        self.git("reset", "-q")  # unstage: a refused snapshot leaves the researcher's edits as they were
        entries = {}
        for line in self.git("ls-tree", "-r", tree).splitlines():
            meta, path = line.split("\t", 1)
            mode, _, blob = meta.split()
            entries[path] = (mode, blob)
        stray = sorted(set(entries) - set(EDITABLE) - set(FROZEN_IN_WORKSPACE))
        if stray:
            raise Refused("measure", ", ".join(stray), "files outside the pipeline; remove them "
                          f"(editable: {', '.join(EDITABLE)})")
        for path, (mode, _) in entries.items():
            if mode != "100644" and mode != "100755":
                raise Refused("measure", path, f"not a regular file (git mode {mode})")
        files = {p: self.git("cat-file", "blob", blob) for p, (_, blob) in entries.items()}
        if files.get(PROGRAM_FILE) != program_text:
            raise Refused("measure", PROGRAM_FILE, "program.md is frozen and was changed")
        commit = self.git("commit-tree", tree, "-p", incumbent, "-m", message).strip()
        self.git("update-ref", f"refs/experiments/{n}", commit)
        return Snapshot(commit, {p: files[p] for p in EDITABLE if p in files})

    def keep(self, commit: str) -> None:
        self.git("reset", "-q", "--hard", commit)
        self.git("clean", "-q", "-fdx")

    def discard(self, incumbent: str) -> None:
        """Restore the incumbent exactly: tracked changes, untracked and ignored files all go."""
        self.git("reset", "-q", "--hard", incumbent)
        self.git("clean", "-q", "-fdx")

    def files_at(self, commit: str) -> dict[str, str]:
        return {p: self.git("show", f"{commit}:{p}") for p in EDITABLE}
