"""The config file: read with every key's line (:mod:`.yaml`), checked against its schema
(:mod:`.schema`) and its cross-references (:mod:`.checks`), every problem worded at once
(:mod:`.messages`), and loaded into :class:`Settings` (:mod:`.load`)."""

from caldaemon.config.load import default_path, load, parse, system_timezone
from caldaemon.config.settings import ClinicianSettings, Settings

__all__ = ["ClinicianSettings", "Settings", "default_path", "load", "parse", "system_timezone"]
