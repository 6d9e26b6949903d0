"""``caldaemon service install|uninstall|status`` (DESIGN.md §12).

The real ``caldaemon`` executable runs in a subprocess with HOME and the XDG folders in a
temporary folder, and ``systemctl``/``launchctl`` on PATH are small scripts that record
their arguments (and answer like the real ones): the service manager is the world's
boundary, so it is replaced there, never inside caldaemon. macOS is asked for with the
hidden ``--platform darwin`` option, an input like ``--now``. The plist is read back with
plistlib; ``plutil -lint`` (macOS only) cannot run here.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner

from caldaemon.cli import main

ROOT = Path(__file__).resolve().parents[2]
analyze = shutil.which("systemd-analyze")

FAKE_MANAGER = """#!/bin/sh
# Records its arguments; when told to, fails the command naming $FAKE_FAIL, saying what
# systemctl 252 says without a user bus unless $FAKE_SAY says otherwise.
echo "$(basename "$0") $*" >> "$FAKE_LOG"
if [ -n "$FAKE_FAIL" ]; then
  case " $* " in
    *" $FAKE_FAIL "*) echo "${FAKE_SAY:-Failed to connect to bus: No medium found}" >&2; exit 1;;
  esac
fi
case "$*" in
  *is-enabled*) echo enabled;;
  *is-active*) echo active;;
  print*) echo "gui/501/org.caldaemon.agent = {"; echo "	state = running";;
esac
"""


def caldaemon() -> list[str]:
    script = Path(sys.executable).parent / "caldaemon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "caldaemon"]


class World:
    """A home, XDG folders, a config and a fake service manager, all under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.xdg_config = tmp_path / "xdg-config"
        self.xdg_state = tmp_path / "xdg-state"
        self.log = tmp_path / "manager.log"
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for name in ("systemctl", "launchctl"):
            fake = self.bin / name
            fake.write_text(FAKE_MANAGER)
            fake.chmod(0o755)
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        self.config = tmp_path / "config.yaml"
        example = (ROOT / "config.example.yaml").read_text()
        # The default state folder, the one the user unit's StateDirectory= makes writable,
        # and the buffers calendar in it: the unit needs no other folder to write.
        example = example.replace("  state_dir: .caldaemon-example/state\n", "")
        buffers = self.xdg_state / "caldaemon/buffers.ics"
        self.config.write_text(example.replace(".caldaemon-example/buffers.ics", str(buffers)))
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "CALDAEMON_CONFIG")},
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.xdg_config),
            "XDG_STATE_HOME": str(self.xdg_state),
            "FAKE_LOG": str(self.log),
        }

    @property
    def unit(self) -> Path:
        return self.xdg_config / "systemd/user/caldaemon.service"

    @property
    def agent(self) -> Path:
        return self.home / "Library/LaunchAgents/org.caldaemon.agent.plist"

    def run(self, *args: str, fail: str = "", say: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*caldaemon(), "service", *args],
            capture_output=True,
            text=True,
            env={**self.env, "FAKE_FAIL": fail, "FAKE_SAY": say},
            cwd=self.root,
            timeout=60,
        )

    def invoke(self, *args: str):  # in-process, for the dry runs
        return CliRunner().invoke(main, ["service", *args], env=self.env)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def world(tmp_path):
    return World(tmp_path)


def exec_start(unit_text: str) -> str:
    [line] = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=")


def printed_file(output: str) -> str:
    """The file a dry run shows: the lines indented by four after ``would write``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("would write")) + 1
    body: list[str] = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        body.append(line[4:])
    return "\n".join(body) + "\n"


def test_dry_run_user_prints_the_unit_and_commands_and_touches_nothing(world):
    result = world.invoke("install", "--user", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert f"would write {world.unit} (mode 0644)" in result.output
    unit = printed_file(result.output)
    words = exec_start(unit).split()
    assert Path(words[0]).is_absolute() and Path(words[0]).exists()
    assert words[-3:] == ["run", "--config", str(world.config)]
    assert "ProtectHome=read-only" in unit and "WantedBy=default.target" in unit
    commands = [line for line in result.output.splitlines() if line.startswith("would run")]
    assert commands == [
        "would run: systemctl --user daemon-reload",
        "would run: systemctl --user enable --now caldaemon.service",
    ]
    assert "caldaemon service uninstall --user" in result.output
    assert not world.unit.exists() and not world.xdg_config.exists()
    assert world.calls() == []


def test_dry_run_system_fills_in_the_system_unit(world):
    already = Path("/etc/systemd/system/caldaemon.service").exists()
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert "would write /etc/systemd/system/caldaemon.service" in result.output
    unit = printed_file(result.output)
    assert exec_start(unit).endswith(f"run --config {world.config}")
    assert Path(exec_start(unit).split()[0]).is_absolute()
    assert "DynamicUser=yes" in unit and "WantedBy=multi-user.target" in unit
    assert "would run: systemctl daemon-reload" in result.output
    assert "would run: systemctl enable --now caldaemon.service" in result.output
    assert Path("/etc/systemd/system/caldaemon.service").exists() == already
    assert world.calls() == []


def test_a_system_config_its_dynamic_user_cannot_read_is_pointed_out(world):
    world.config.chmod(0o600)
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert f"note: {world.config} is not readable by others" in result.output
    assert f"chmod 0644 {world.config}" in result.output


def test_dry_run_macos_prints_a_launch_agent(world):
    result = world.invoke(
        "install", "--platform", "darwin", "--dry-run", "--config", str(world.config)
    )
    assert result.exit_code == 0, result.output
    agent = plistlib.loads(printed_file(result.output).encode())
    assert agent["Label"] == "org.caldaemon.agent"
    assert agent["ProgramArguments"][-3:] == ["run", "--config", str(world.config)]
    uid = os.getuid()
    assert f"would run: launchctl bootstrap gui/{uid} {world.agent}" in result.output
    assert not world.agent.exists() and world.calls() == []


def test_install_user_writes_the_unit_and_enables_it_then_uninstall_removes_it(world):
    result = world.run("install", "--user", "--config", str(world.config))
    assert result.returncode == 0, result.stderr
    unit = world.unit.read_text()
    command = exec_start(unit).split()
    assert command[0] == caldaemon()[0] and Path(command[0]).is_absolute()
    assert command[-3:] == ["run", "--config", str(world.config)]
    assert stat.S_IMODE(world.unit.stat().st_mode) == 0o644
    writable = [line for line in unit.splitlines() if line.startswith("ReadWritePaths=")]
    assert writable == ["ReadWritePaths=%S/caldaemon"]  # the default state folder only
    assert world.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user enable --now caldaemon.service",
    ]
    assert f"wrote {world.unit}" in result.stdout
    assert "To undo it: caldaemon service uninstall --user" in result.stdout

    status = world.run("status")
    assert status.returncode == 0, status.stderr
    assert "installed: yes" in status.stdout and f"runs: {exec_start(unit)}" in status.stdout
    assert "enabled: enabled" in status.stdout and "active: active" in status.stdout

    world.log.unlink()
    removed = world.run("uninstall", "--user")
    assert removed.returncode == 0, removed.stderr
    assert not world.unit.exists()
    assert world.calls() == [
        "systemctl --user disable --now caldaemon.service",
        "systemctl --user daemon-reload",
    ]
    assert "installed: no" in world.run("status").stdout


def test_installing_again_restarts_the_running_service_on_the_new_unit(world):
    assert world.run("install", "--config", str(world.config)).returncode == 0
    world.log.unlink()
    again = world.run("install", "--config", str(world.config))
    assert again.returncode == 0, again.stderr
    assert world.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user enable caldaemon.service",
        "systemctl --user restart caldaemon.service",
    ]


def test_no_user_bus_exits_2_saying_what_to_do(world):
    result = world.run("install", "--config", str(world.config), fail="daemon-reload")
    assert result.returncode == 2
    assert "Failed to connect to bus" in result.stderr
    assert "loginctl enable-linger" in result.stderr
    assert "caldaemon service uninstall --user" in result.stderr
    assert "Traceback" not in result.stderr
    assert world.calls() == ["systemctl --user daemon-reload"]  # enable never ran


def test_a_service_that_fails_to_start_points_to_its_log_not_to_linger(world):
    said = "Job for caldaemon.service failed because the control process exited with error code."
    result = world.run("install", "--config", str(world.config), fail="enable", say=said)
    assert result.returncode == 2
    assert said in result.stderr
    assert "journalctl --user -u caldaemon -e" in result.stderr
    assert "linger" not in result.stderr
    assert world.unit.exists()  # written, and the message says how to undo it
    assert "caldaemon service uninstall --user" in result.stderr


def test_a_config_that_does_not_load_is_refused_before_anything_is_written(world):
    world.config.write_text("clinicians: [\n")
    result = world.run("install", "--config", str(world.config))
    assert result.returncode == 2
    assert "the service would not start" in result.stderr
    assert "caldaemon validate --config" in result.stderr
    assert not world.unit.exists() and world.calls() == []


def test_a_missing_config_is_refused_pointing_to_init(world):
    result = world.run("install", "--config", str(world.root / "nowhere.yaml"))
    assert result.returncode == 2
    assert "caldaemon init --config" in result.stderr
    assert not world.unit.exists() and world.calls() == []


def test_the_folders_caldaemon_writes_are_made_and_made_writable(world):
    state = world.root / "therapy state"
    calendars = world.home / "Calendars"
    text = world.config.read_text().replace("daemon:\n", f"daemon:\n  state_dir: {state}\n", 1)
    world.config.write_text(
        text.replace(str(world.xdg_state / "caldaemon/buffers.ics"), str(calendars / "b.ics"))
    )
    result = world.run("install", "--config", str(world.config))
    assert result.returncode == 0, result.stderr
    unit = world.unit.read_text()
    writable = [line for line in unit.splitlines() if line.startswith("ReadWritePaths=")]
    assert writable == [
        "ReadWritePaths=%S/caldaemon",
        f'ReadWritePaths="{state}"',
        f"ReadWritePaths={calendars}",
    ]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(calendars.stat().st_mode) == 0o700
    assert f"made folder {calendars}" in result.stdout


@pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")
def test_the_written_user_unit_verifies(world):
    # A folder name with a space and a '%' (a specifier when not doubled) in the config path.
    folder = world.root / "my calendars 100%"
    folder.mkdir()
    config = folder / "config.yaml"
    shutil.copytree(world.root / "examples", folder / "examples")
    config.write_text(world.config.read_text())
    assert world.run("install", "--config", str(config)).returncode == 0
    assert f'"{folder}%/config.yaml"' in exec_start(world.unit.read_text())
    runtime = world.root / "run"
    runtime.mkdir(mode=0o700)
    assert analyze is not None
    result = subprocess.run(
        [analyze, "--user", "verify", str(world.unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")
def test_the_system_unit_a_dry_run_shows_verifies(world):
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    unit = world.root / "caldaemon.service"
    unit.write_text(printed_file(result.output))
    assert analyze is not None
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    assert "caldaemon.service" not in verified.stderr, verified.stderr


def test_install_macos_writes_and_bootstraps_the_agent_then_uninstall_boots_it_out(world):
    # plutil -lint checks a plist on macOS only; here plistlib reads it back.
    result = world.run("install", "--platform", "darwin", "--config", str(world.config))
    assert result.returncode == 0, result.stderr
    agent = plistlib.loads(world.agent.read_bytes())
    assert agent["Label"] == "org.caldaemon.agent"
    arguments = agent["ProgramArguments"]
    assert arguments[0] == caldaemon()[0] and Path(arguments[0]).is_absolute()
    assert arguments[-3:] == ["run", "--config", str(world.config)]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    log = world.home / "Library/Logs/caldaemon/caldaemon.log"
    assert agent["StandardOutPath"] == agent["StandardErrorPath"] == str(log)
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    uid = os.getuid()
    assert world.calls() == [
        f"launchctl enable gui/{uid}/org.caldaemon.agent",
        f"launchctl bootstrap gui/{uid} {world.agent}",
    ]
    status = world.run("status", "--platform", "darwin")
    assert "loaded: yes; state: running" in status.stdout

    world.log.unlink()
    assert world.run("uninstall", "--platform", "darwin").returncode == 0
    assert not world.agent.exists()
    assert world.calls() == [f"launchctl bootout gui/{uid}/org.caldaemon.agent"]


def test_system_on_macos_is_refused_with_the_reason(world):
    result = world.invoke("install", "--platform", "darwin", "--system", "--dry-run")
    assert result.exit_code == 2
    assert "dedicated account" in result.output and "--user" in result.output
    assert not world.agent.exists()


def test_install_system_without_root_is_refused(world):
    command = [*caldaemon(), "service", "install", "--system", "--config", str(world.config)]
    if os.geteuid() == 0:
        # A user namespace makes this process someone else to itself, with no capability
        # outside it: the real check of the real uid, without a second account.
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("running as root and unshare is not installed")
        command = [unshare, "--user", *command]
    result = subprocess.run(
        command, capture_output=True, text=True, env=world.env, timeout=60, check=False
    )
    if result.returncode != 2 and "unshare" in result.stderr:
        pytest.skip(f"no user namespace here: {result.stderr.strip()}")
    assert result.returncode == 2
    assert "needs root" in result.stderr and "sudo" in result.stderr
    assert world.calls() == []


@pytest.mark.parametrize("name", ["caldaemon-user.service", "caldaemon.service"])
def test_the_packaged_unit_templates_are_the_shipped_units(name):
    # caldaemon/service/units links to systemd/: what test_systemd_units.py verifies and
    # scores is what install fills in.
    packaged = files("caldaemon.service").joinpath("units").joinpath(name).read_text()
    assert packaged == (ROOT / "systemd" / name).read_text()


def with_secrets(world: World, key: str, password: str) -> None:
    """The world's config with a Google service account's key and an SMTP password, each
    named as ``key`` and ``password`` (written by ``init --system`` as bare names), and
    the two files beside the config, root's alone, as init's next steps say."""
    text = world.config.read_text()
    google = (
        "      - id: workspace\n"
        "        provider: google\n"
        f"        credentials: {key}\n"
        "        subject: sam.lee@example.org\n"
        "        use: busy\n"
    )
    email = (
        "  email:\n"
        "    from: caldaemon@example.org\n"
        "    smtp: {host: smtp.example.org, port: 587, security: starttls,\n"
        f"           username: caldaemon, password_file: {password}}}\n"
    )
    text = text.replace("      - id: buffers\n", google + "      - id: buffers\n", 1)
    world.config.write_text(text.replace("  privacy: redacted\n", "  privacy: redacted\n" + email))
    for name in ("google-key.json", "smtp-password"):
        (world.root / name).write_text("{}" if name.endswith(".json") else "s3cret\n")
        (world.root / name).chmod(0o600)


def credential_lines(unit_text: str) -> list[str]:
    return [line for line in unit_text.splitlines() if line.startswith("LoadCredential=")]


def test_system_unit_hands_over_each_secret_the_config_names_bare(world):
    with_secrets(world, "google-key.json", "smtp-password")
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    # tmp_path's own folders are 0700, so a note says the config is out of the user's reach.
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert not [note for note in notes if "not readable by others" not in note]
    assert credential_lines(printed_file(result.output)) == [
        f"LoadCredential=google-key.json:{world.root}/google-key.json",
        f"LoadCredential=smtp-password:{world.root}/smtp-password",
    ]  # the template's example line is gone


def test_system_unit_without_secrets_loads_no_credential(world):
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert credential_lines(printed_file(result.output)) == []


@pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")
def test_the_system_unit_with_credentials_verifies(world):
    with_secrets(world, "google-key.json", "smtp-password")
    result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    unit = world.root / "caldaemon.service"
    unit.write_text(printed_file(result.output))
    assert len(credential_lines(unit.read_text())) == 2
    assert analyze is not None
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    assert "caldaemon.service" not in verified.stderr, verified.stderr


def test_a_secret_the_dynamic_user_cannot_read_is_refused_saying_where_it_goes(world):
    secret = world.root / "elsewhere" / "smtp-password"
    secret.parent.mkdir()
    secret.write_text("s3cret\n")
    secret.chmod(0o600)
    with_secrets(world, "google-key.json", str(secret))
    shown = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert shown.exit_code == 0, shown.output
    assert (
        f"note: notices.email.smtp.password_file: the service's own user (DynamicUser=yes) "
        f"cannot read {secret}: move it to {world.root}/smtp-password (root's, mode 0600) "
        "and write `password_file: smtp-password`"
    ) in shown.output
    assert credential_lines(printed_file(shown.output)) == [
        f"LoadCredential=google-key.json:{world.root}/google-key.json"
    ]
    if os.geteuid() != 0:
        return  # without root, install --system stops before it looks (tested above)
    installed = Path("/etc/systemd/system/caldaemon.service").exists()
    refused = world.run("install", "--system", "--config", str(world.config))
    assert refused.returncode == 2
    assert f"cannot read {secret}" in refused.stderr and "Traceback" not in refused.stderr
    assert Path("/etc/systemd/system/caldaemon.service").exists() == installed
    assert world.calls() == []


def test_a_secret_in_a_subfolder_is_refused_as_no_credential_name(world):
    with_secrets(world, "keys/google-key.json", "smtp-password")
    shown = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert (
        "note: clinicians.lee.calendars.workspace.credentials: keys/google-key.json is not "
        "a bare file name, and a credential's name may not hold a '/'"
    ) in shown.output
    assert f"move it to {world.root}/google-key.json" in shown.output
    assert credential_lines(printed_file(shown.output)) == [
        f"LoadCredential=smtp-password:{world.root}/smtp-password"
    ]


def test_a_missing_secret_is_pointed_out_before_the_service_fails_on_it(world):
    with_secrets(world, "google-key.json", "smtp-password")
    (world.root / "smtp-password").unlink()
    shown = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert f"note: notices.email.smtp.password_file: {world.root}/smtp-password is missing" in (
        shown.output
    )
