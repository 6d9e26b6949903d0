"""What the system unit's sandbox lets the service see (systemd/caldaemon.service,
systemd.exec(5)): it runs as an ephemeral user (DynamicUser=yes) that reads only what
others may read, outside the folders it hides; key and password files stay root's and are
handed over by systemd (LoadCredential=), read as root from beside the config (issue 14).
Reads, never changes: ``caldaemon service install --system`` turns this into the unit."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from caldaemon.config.load import Loaded, written_secrets

# ProtectHome=yes hides these from the service.
HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))
# PrivateTmp=yes gives the service a /tmp and /var/tmp of its own: a file there is not seen.
PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))
# A credential's name is a file name in $CREDENTIALS_DIRECTORY and the ID of
# LoadCredential=ID:PATH: no '/', and here no ':', space or '%' (a specifier) either.
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*")


def hidden(path: Path) -> bool:
    return any(path.is_relative_to(folder) for folder in HIDDEN)


def others_can_read(path: Path, *, private_tmp: bool = True) -> bool:
    """Whether a user who is nobody in particular (the unit's DynamicUser=) reads ``path``:
    readable by others, in folders others may enter, none of them hidden by the sandbox
    (nor, with ``private_tmp``, in the /tmp it replaces)."""
    if hidden(path) or (private_tmp and any(path.is_relative_to(p) for p in PRIVATE_TMP)):
        return False
    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(folder.stat().st_mode & stat.S_IXOTH for folder in path.parents)
    except OSError:
        return False


def credentials(config: Path, loaded: Loaded) -> tuple[tuple[tuple[str, Path], ...], list[str]]:
    """A LoadCredential= for each key or password file the config at ``config`` (read as
    ``loaded``) names by a bare name (the loader looks it up in $CREDENTIALS_DIRECTORY
    under the unit: config/load.py), read by systemd, as root, from beside the config; and
    why any other would fail."""
    folder = config.parent
    handed: dict[str, Path] = {}
    problems: list[str] = []
    for key, path in written_secrets(loaded):
        name = path.name
        setting = key.rpartition(".")[2]
        beside = f"{folder / name} (root's, mode 0600) and write `{setting}: {name}`"
        if path.is_absolute():
            if not others_can_read(path):
                problems.append(
                    f"{key}: the service's own user (DynamicUser=yes) cannot read {path}: "
                    f"move it to {beside}; systemd then hands it over (LoadCredential=)"
                )
        elif len(path.parts) != 1:
            problems.append(
                f"{key}: {path} is not a bare file name, and a credential's name may not hold "
                f"a '/' (LoadCredential=, systemd.exec(5)): move it to {beside}"
            )
        elif not _CREDENTIAL_NAME.fullmatch(name):
            problems.append(
                f"{key}: {name!r} cannot name a credential (LoadCredential=): rename the file "
                "with letters, digits and . _ - @ + only"
            )
        else:
            handed[name] = folder / name
            if not (folder / name).is_file():
                problems.append(
                    f"{key}: {folder / name} is missing, and the service would not start "
                    f"without it: put the file there (root's, mode 0600)"
                )
    return tuple(handed.items()), problems
