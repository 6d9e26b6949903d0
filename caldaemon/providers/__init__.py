"""Calendar providers: the interface and registry in :mod:`.base`, one sub-package per
service (provider, http, mapping, auth, settings), each imported only when a calendar uses
it (a check of ICS files never pays for Google's or Microsoft's client libraries)."""
