"""Checkpoints: writing them so that a half-written one is never used, and reading their modules.

An RLlib algorithm checkpoint keeps each RL module in its own folder
(``learner_group/learner/rl_module/<module id>``), so acting needs neither a Ray
cluster nor the training config: :func:`load_modules` builds the modules from
those folders.

hmarl adds a marker, ``hmarl_checkpoint.json``, written last into every checkpoint
it saves (through Tune or not): the training iteration, the env steps, and every
file of the checkpoint with its size and SHA-256 hash. A checkpoint is *complete*
when its marker is there and every file it lists has that size, so a save cut
short by a crash or a kill (even while Tune copies a checkpoint into the run
folder) is never picked by the tools or by ``--resume``; checkpoints are ordered by
the iteration in their marker, not by file times. The one checkpoint that is about
to be loaded is also checked against its hashes (:func:`checkpoint_problem`): a
file changed in place, even to the same size, makes it incomplete too, and the
one before it is used (:func:`newer_incomplete` names what was skipped).

Security: RLlib checkpoints contain pickled Python objects. Loading one runs code
from it; load only checkpoints you trust (``hmarl export`` writes weights only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

MODULES_DIR = Path("learner_group", "learner", "rl_module")
MARKER = "hmarl_checkpoint.json"


class CheckpointError(ValueError):
    """The path given is not a usable hmarl checkpoint; the message says why."""


def write_marker(checkpoint: Path, iteration: int, **extra: Any) -> None:
    """Mark a fully written checkpoint (the last file written into it)."""
    checkpoint = Path(checkpoint)
    paths = [p for p in sorted(checkpoint.rglob("*")) if p.is_file() and p.name != MARKER]
    names = [str(path.relative_to(checkpoint)) for path in paths]
    marker = {
        "iteration": int(iteration),
        **extra,
        "files": {name: path.stat().st_size for name, path in zip(names, paths, strict=True)},
        "sha256": {name: _sha256(path) for name, path in zip(names, paths, strict=True)},
    }
    tmp = checkpoint / f".{MARKER}.partial"
    tmp.write_text(json.dumps(marker))
    os.replace(tmp, checkpoint / MARKER)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(checkpoint: Path) -> dict[str, Any] | None:
    """The checkpoint's marker, or None if it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(checkpoint) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("iteration"), int):
        return None
    return marker


def checkpoint_problem(checkpoint: Path, hashes: bool = True) -> str | None:
    """Why a checkpoint is incomplete, or None if it is whole.

    Whole: its marker is there and every file it lists has the listed size and, with
    ``hashes``, the listed SHA-256 (markers written before hmarl recorded hashes
    are checked by size only).
    """
    marker = read_marker(checkpoint)
    if marker is None or not isinstance(marker.get("files"), dict):
        return f"it has no readable {MARKER} (its save was cut short)"
    recorded = marker.get("sha256") if hashes else None
    for name, size in marker["files"].items():
        path = Path(checkpoint) / name
        try:
            found = path.stat().st_size
        except OSError:
            return f"{name} is missing"
        if found != size:
            return f"{name} is {found} bytes, not the {size} it was saved with"
        if isinstance(recorded, dict) and recorded.get(name) != _sha256(path):
            return f"{name} has changed since it was saved (its SHA-256 differs)"
    return None


def is_complete(checkpoint: Path) -> bool:
    """The marker is there and every file it lists has the size it lists (no hashing)."""
    return checkpoint_problem(checkpoint, hashes=False) is None


def find_checkpoints(folder: Path) -> list[Path]:
    """Every complete hmarl checkpoint under ``folder`` (Tune's or ours), oldest first."""
    folder = Path(folder)
    found = []
    for marker in folder.rglob(MARKER):
        checkpoint = marker.parent
        # Hidden folders hold checkpoints being written.
        if any(part.startswith(".") for part in checkpoint.relative_to(folder).parts):
            continue
        if is_complete(checkpoint):
            found.append((read_marker(checkpoint)["iteration"], str(checkpoint), checkpoint))
    return [checkpoint for *_, checkpoint in sorted(found)]


def is_checkpoint(path: Path) -> bool:
    """An RLlib algorithm checkpoint folder (complete or not)."""
    return (Path(path) / "rllib_checkpoint.json").is_file()


def newer_incomplete(folder: Path, than: Path) -> list[str]:
    """Each incomplete checkpoint under ``folder`` saved after ``than``, and why.

    Newer: by the iteration in its marker, or by time for one with no marker.
    """
    folder, than = Path(folder), Path(than)
    iteration = read_marker(than)["iteration"]
    saved = than.stat().st_mtime
    notes = []
    for candidate in sorted({*folder.rglob(MARKER), *folder.rglob("rllib_checkpoint.json")}):
        checkpoint = candidate.parent
        if checkpoint == than or any(
            part.startswith(".") for part in checkpoint.relative_to(folder).parts
        ):
            continue
        problem = checkpoint_problem(checkpoint, hashes=False)
        if problem is None:
            continue
        marker = read_marker(checkpoint)
        newer = marker["iteration"] > iteration if marker else checkpoint.stat().st_mtime > saved
        if newer:
            notes.append(f"{checkpoint}: {problem}")
    return sorted(set(notes))


def save_atomically(save: Any, final: Path) -> Path:
    """Call ``save(tmp)`` on a hidden temporary folder beside ``final``, then rename it.

    An interrupted save leaves only the hidden folder, which nothing reads.
    """
    final = Path(final)
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def load_modules(checkpoint: Path) -> dict[str, Any]:
    """Every RL module of one checkpoint folder, by module id, ready for inference."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    checkpoint = Path(checkpoint)
    folder = checkpoint / MODULES_DIR
    ids = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not ids:
        raise CheckpointError(f"{checkpoint} holds no RL modules ({MODULES_DIR} is missing)")
    modules = {}
    for module_id in ids:
        try:
            module = RLModule.from_checkpoint(str((folder / module_id).resolve()))
        except Exception as err:  # a corrupt file can fail in many ways; all mean the same
            raise CheckpointError(
                f"{checkpoint}: cannot load {module_id} ({type(err).__name__}: {err})"
            ) from None
        module.eval()
        modules[module_id] = module
    return modules
