"""``caldaemon service install`` reads the config once: the credentials the system unit is
handed come from the same reading that checked the config loads (issue 15: it read and
checked the whole file twice, seconds each for a platform's config)."""

from __future__ import annotations

from tests.cli.test_service import World, credential_lines, printed_file, with_secrets
from tests.config.opened import opened_files, times_opened


def test_install_system_reads_the_config_once_and_hands_over_its_secrets(tmp_path):
    world = World(tmp_path)
    with_secrets(world, "google-key.json", "smtp-password")
    with opened_files() as opened:
        result = world.invoke("install", "--system", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert times_opened(opened, world.config) == 1
    assert credential_lines(printed_file(result.output)) == [
        f"LoadCredential=google-key.json:{world.root}/google-key.json",
        f"LoadCredential=smtp-password:{world.root}/smtp-password",
    ]


def test_install_user_reads_the_config_once(tmp_path):
    world = World(tmp_path)
    with opened_files() as opened:
        result = world.invoke("install", "--dry-run", "--config", str(world.config))
    assert result.exit_code == 0, result.output
    assert times_opened(opened, world.config) == 1
