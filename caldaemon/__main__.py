"""``python -m caldaemon``: the same as the ``caldaemon`` command."""

from caldaemon.cli import main

main()
