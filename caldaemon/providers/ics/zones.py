"""Time zones named the way Windows shows them to people.

icalendar already maps Windows zone ids ("Eastern Standard Time") to IANA zones with CLDR's
windowsZones table. Exchange 2010, OWA and Outlook of that era write something else into
TZID when they leave the VTIMEZONE out: the zone's *display name*, such as
``(UTC-05:00) Eastern Time (US & Canada)`` or ``(GMT+10:00) Canberra, Melbourne, Sydney``.
Read as an unknown zone, such a time floats into the clinician's zone (a Sydney event
14-15 hours off). :func:`resolve` strips the ``(UTC±hh:mm)`` prefix, finds the Windows zone
id the rest names, and lets icalendar's CLDR table take it from there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from icalendar.timezone import tzp

# The English display names of Windows' time zones, without their "(UTC±hh:mm) " prefix,
# to the zone's registry key (its id, which CLDR's windowsZones maps to IANA).
#
# Source: the ``Display`` value of each key under the Windows registry's
# HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Time Zones (en-US), as ``tzutil /l``
# and .NET's TimeZoneInfo.DisplayName show it: Windows 10/11 names as Get-TimeZone
# -ListAvailable lists them (for example OfficeDev/Microsoft-Teams-Shifts-WFM-Connectors,
# Kronos-Shifts-Connector/timezones.md), then the older names of Windows XP / Server 2003
# to Windows 7, the "(GMT±hh:mm)" ones that Exchange 2007/2010 and OWA still write. A name
# whose zone CLDR does not map (Windows' retired "Mid-Atlantic" and "Kamchatka" keys) is
# left out. tests/providers/test_ics_hostile.py checks that every key here resolves.
_DISPLAY_NAMES: dict[str, str] = {
    # -- Windows 10 / 11 ------------------------------------------------------------------
    "International Date Line West": "Dateline Standard Time",
    "Coordinated Universal Time-11": "UTC-11",
    "Co-ordinated Universal Time-11": "UTC-11",
    "Aleutian Islands": "Aleutian Standard Time",
    "Hawaii": "Hawaiian Standard Time",
    "Marquesas Islands": "Marquesas Standard Time",
    "Alaska": "Alaskan Standard Time",
    "Coordinated Universal Time-09": "UTC-09",
    "Co-ordinated Universal Time-09": "UTC-09",
    "Baja California": "Pacific Standard Time (Mexico)",
    "Coordinated Universal Time-08": "UTC-08",
    "Co-ordinated Universal Time-08": "UTC-08",
    "Pacific Time (US & Canada)": "Pacific Standard Time",
    "Arizona": "US Mountain Standard Time",
    "Chihuahua, La Paz, Mazatlan": "Mountain Standard Time (Mexico)",
    "La Paz, Mazatlan": "Mountain Standard Time (Mexico)",
    "Mountain Time (US & Canada)": "Mountain Standard Time",
    "Yukon": "Yukon Standard Time",
    "Central America": "Central America Standard Time",
    "Central Time (US & Canada)": "Central Standard Time",
    "Easter Island": "Easter Island Standard Time",
    "Guadalajara, Mexico City, Monterrey": "Central Standard Time (Mexico)",
    "Saskatchewan": "Canada Central Standard Time",
    "Bogota, Lima, Quito, Rio Branco": "SA Pacific Standard Time",
    "Chetumal": "Eastern Standard Time (Mexico)",
    "Eastern Time (US & Canada)": "Eastern Standard Time",
    "Haiti": "Haiti Standard Time",
    "Havana": "Cuba Standard Time",
    "Indiana (East)": "US Eastern Standard Time",
    "Turks and Caicos": "Turks And Caicos Standard Time",
    "Asuncion": "Paraguay Standard Time",
    "Atlantic Time (Canada)": "Atlantic Standard Time",
    "Caracas": "Venezuela Standard Time",
    "Cuiaba": "Central Brazilian Standard Time",
    "Georgetown, La Paz, Manaus, San Juan": "SA Western Standard Time",
    "Santiago": "Pacific SA Standard Time",
    "Newfoundland": "Newfoundland Standard Time",
    "Araguaina": "Tocantins Standard Time",
    "Brasilia": "E. South America Standard Time",
    "Cayenne, Fortaleza": "SA Eastern Standard Time",
    "City of Buenos Aires": "Argentina Standard Time",
    "Greenland": "Greenland Standard Time",
    "Montevideo": "Montevideo Standard Time",
    "Punta Arenas": "Magallanes Standard Time",
    "Saint Pierre and Miquelon": "Saint Pierre Standard Time",
    "Salvador": "Bahia Standard Time",
    "Coordinated Universal Time-02": "UTC-02",
    "Co-ordinated Universal Time-02": "UTC-02",
    "Azores": "Azores Standard Time",
    "Cabo Verde Is.": "Cape Verde Standard Time",
    "Coordinated Universal Time": "UTC",
    "Co-ordinated Universal Time": "UTC",
    "Dublin, Edinburgh, Lisbon, London": "GMT Standard Time",
    "Monrovia, Reykjavik": "Greenwich Standard Time",
    "Sao Tome": "Sao Tome Standard Time",
    "Casablanca": "Morocco Standard Time",
    "Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna": "W. Europe Standard Time",
    "Belgrade, Bratislava, Budapest, Ljubljana, Prague": "Central Europe Standard Time",
    "Brussels, Copenhagen, Madrid, Paris": "Romance Standard Time",
    "Sarajevo, Skopje, Warsaw, Zagreb": "Central European Standard Time",
    "West Central Africa": "W. Central Africa Standard Time",
    "Amman": "Jordan Standard Time",
    "Athens, Bucharest": "GTB Standard Time",
    "Beirut": "Middle East Standard Time",
    "Cairo": "Egypt Standard Time",
    "Chisinau": "E. Europe Standard Time",
    "Damascus": "Syria Standard Time",
    "Gaza, Hebron": "West Bank Standard Time",
    "Harare, Pretoria": "South Africa Standard Time",
    "Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius": "FLE Standard Time",
    "Helsinki, Kiev, Riga, Sofia, Tallinn, Vilnius": "FLE Standard Time",
    "Jerusalem": "Israel Standard Time",
    "Juba": "South Sudan Standard Time",
    "Kaliningrad": "Kaliningrad Standard Time",
    "Khartoum": "Sudan Standard Time",
    "Tripoli": "Libya Standard Time",
    "Windhoek": "Namibia Standard Time",
    "Baghdad": "Arabic Standard Time",
    "Istanbul": "Turkey Standard Time",
    "Kuwait, Riyadh": "Arab Standard Time",
    "Minsk": "Belarus Standard Time",
    "Moscow, St Petersburg": "Russian Standard Time",
    "Moscow, St. Petersburg": "Russian Standard Time",
    "Nairobi": "E. Africa Standard Time",
    "Volgograd": "Volgograd Standard Time",
    "Tehran": "Iran Standard Time",
    "Abu Dhabi, Muscat": "Arabian Standard Time",
    "Astrakhan, Ulyanovsk": "Astrakhan Standard Time",
    "Baku": "Azerbaijan Standard Time",
    "Izhevsk, Samara": "Russia Time Zone 3",
    "Port Louis": "Mauritius Standard Time",
    "Saratov": "Saratov Standard Time",
    "Tbilisi": "Georgian Standard Time",
    "Yerevan": "Caucasus Standard Time",
    "Kabul": "Afghanistan Standard Time",
    "Ashgabat, Tashkent": "West Asia Standard Time",
    "Ekaterinburg": "Ekaterinburg Standard Time",
    "Islamabad, Karachi": "Pakistan Standard Time",
    "Qyzylorda": "Qyzylorda Standard Time",
    "Chennai, Kolkata, Mumbai, New Delhi": "India Standard Time",
    "Sri Jayawardenepura": "Sri Lanka Standard Time",
    "Kathmandu": "Nepal Standard Time",
    "Astana": "Central Asia Standard Time",
    "Dhaka": "Bangladesh Standard Time",
    "Omsk": "Omsk Standard Time",
    "Yangon (Rangoon)": "Myanmar Standard Time",
    "Bangkok, Hanoi, Jakarta": "SE Asia Standard Time",
    "Barnaul, Gorno-Altaysk": "Altai Standard Time",
    "Hovd": "W. Mongolia Standard Time",
    "Krasnoyarsk": "North Asia Standard Time",
    "Novosibirsk": "N. Central Asia Standard Time",
    "Tomsk": "Tomsk Standard Time",
    "Beijing, Chongqing, Hong Kong, Urumqi": "China Standard Time",
    "Beijing, Chongqing, Hong Kong SAR, Urumqi": "China Standard Time",
    "Irkutsk": "North Asia East Standard Time",
    "Kuala Lumpur, Singapore": "Singapore Standard Time",
    "Perth": "W. Australia Standard Time",
    "Taipei": "Taipei Standard Time",
    "Ulaanbaatar": "Ulaanbaatar Standard Time",
    "Eucla": "Aus Central W. Standard Time",
    "Chita": "Transbaikal Standard Time",
    "Osaka, Sapporo, Tokyo": "Tokyo Standard Time",
    "Pyongyang": "North Korea Standard Time",
    "Seoul": "Korea Standard Time",
    "Yakutsk": "Yakutsk Standard Time",
    "Adelaide": "Cen. Australia Standard Time",
    "Darwin": "AUS Central Standard Time",
    "Brisbane": "E. Australia Standard Time",
    "Canberra, Melbourne, Sydney": "AUS Eastern Standard Time",
    "Guam, Port Moresby": "West Pacific Standard Time",
    "Hobart": "Tasmania Standard Time",
    "Vladivostok": "Vladivostok Standard Time",
    "Lord Howe Island": "Lord Howe Standard Time",
    "Bougainville Island": "Bougainville Standard Time",
    "Chokurdakh": "Russia Time Zone 10",
    "Magadan": "Magadan Standard Time",
    "Norfolk Island": "Norfolk Standard Time",
    "Sakhalin": "Sakhalin Standard Time",
    "Solomon Is., New Caledonia": "Central Pacific Standard Time",
    "Anadyr, Petropavlovsk-Kamchatsky": "Russia Time Zone 11",
    "Auckland, Wellington": "New Zealand Standard Time",
    "Coordinated Universal Time+12": "UTC+12",
    "Co-ordinated Universal Time+12": "UTC+12",
    "Fiji": "Fiji Standard Time",
    "Chatham Islands": "Chatham Islands Standard Time",
    "Coordinated Universal Time+13": "UTC+13",
    "Co-ordinated Universal Time+13": "UTC+13",
    "Nuku'alofa": "Tonga Standard Time",
    "Samoa": "Samoa Standard Time",
    "Kiritimati Island": "Line Islands Standard Time",
    # -- Windows XP / Server 2003 to Windows 7: Exchange 2007/2010, OWA ---------------------
    "Pacific Time (US & Canada); Tijuana": "Pacific Standard Time",
    "Tijuana, Baja California": "Pacific Standard Time (Mexico)",
    "Chihuahua, La Paz, Mazatlan - Old": "Mountain Standard Time (Mexico)",
    "Guadalajara, Mexico City, Monterrey - Old": "Central Standard Time (Mexico)",
    "Bogota, Lima, Quito": "SA Pacific Standard Time",
    "Caracas, La Paz": "SA Western Standard Time",
    "Georgetown, La Paz, San Juan": "SA Western Standard Time",
    "Manaus": "Central Brazilian Standard Time",
    "Buenos Aires": "Argentina Standard Time",
    "Buenos Aires, Georgetown": "Argentina Standard Time",
    "Cayenne": "SA Eastern Standard Time",
    "Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London": "GMT Standard Time",
    "Casablanca, Monrovia": "Greenwich Standard Time",
    "Casablanca, Monrovia, Reykjavik": "Greenwich Standard Time",
    "Athens, Beirut, Istanbul, Minsk": "GTB Standard Time",
    "Athens, Bucharest, Istanbul": "GTB Standard Time",
    "Athens, Istanbul, Minsk": "GTB Standard Time",
    "Cape Verde Is.": "Cape Verde Standard Time",
    "Bucharest": "GTB Standard Time",
    "Moscow, St. Petersburg, Volgograd": "Russian Standard Time",
    "Moscow, St. Petersburg, Volgograd (RTZ 2)": "Russian Standard Time",
    "Baku, Tbilisi, Yerevan": "Caucasus Standard Time",
    "Islamabad, Karachi, Tashkent": "Pakistan Standard Time",
    "Tashkent": "West Asia Standard Time",
    "Astana, Dhaka": "Central Asia Standard Time",
    "Almaty, Novosibirsk": "N. Central Asia Standard Time",
    "Yangon": "Myanmar Standard Time",
    "Rangoon": "Myanmar Standard Time",
    "Irkutsk, Ulaan Bataar": "North Asia East Standard Time",
    "Ulaan Bataar": "Ulaanbaatar Standard Time",
    "Fiji, Kamchatka, Marshall Is.": "Fiji Standard Time",
    "Magadan, Solomon Is., New Caledonia": "Central Pacific Standard Time",
}

# "(UTC-05:00) ", "(GMT+10:00) ", "(UTC) ", "(GMT) ", "(UTC+5:30)": the offset Windows
# puts in front of a display name.
_PREFIX = re.compile(r"^\(\s*(?:UTC|GMT)\s*(?:([+\-\u2212])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)\s*")
_BY_NAME = {" ".join(name.casefold().split()): key for name, key in _DISPLAY_NAMES.items()}


def windows_id(tzid: str) -> str | None:
    """The Windows zone id a display name (with or without its prefix) names, or None."""
    rest = _PREFIX.sub("", tzid.strip().strip('"'), count=1)
    return _BY_NAME.get(" ".join(rest.casefold().split()))


def stated_offset(tzid: str) -> timedelta | None:
    """The offset in a "(UTC+hh:mm)" prefix; None without one."""
    match = _PREFIX.match(tzid.strip().strip('"'))
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    if sign is None:
        return timedelta(0)
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset >= timedelta(hours=15) or int(minutes or 0) >= 60:
        return None
    return -offset if sign in "-\u2212" else offset


def resolve(tzid: str) -> tuple[tzinfo | None, bool]:
    """The zone a TZID names that icalendar did not know: a Windows display name through
    CLDR, else (second value True) a fixed offset from its "(UTC±hh:mm)" prefix, which is
    right except across a daylight-saving change. (None, False) when it names nothing."""
    key = windows_id(tzid)
    if key is not None:
        zone = tzp.timezone(key)
        if zone is not None:
            return zone, False
    offset = stated_offset(tzid)
    if offset is not None:
        return timezone(offset), True
    return None, False


def display_name_keys() -> dict[str, str]:
    """The table, for tests."""
    return dict(_DISPLAY_NAMES)


# The properties whose values a TZID parameter places in time (RFC 5545 §3.2.19).
ZONED = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE")


def fix_zones(vevent: Any, fallback: Callable[[str], tzinfo]) -> list[tuple[str, str]]:
    """Give the times of ``vevent`` whose TZID icalendar did not know (they are left
    floating) the zone :func:`resolve` finds, else ``fallback(property)``. Returns
    (property, how) for each property not placed in a zone its TZID names: ``"offset"``
    (at the offset its name states) or ``"fallback"``."""
    outcomes: list[tuple[str, str]] = []
    for name in ZONED:
        found = vevent.get(name)
        for prop in found if isinstance(found, list) else [found]:
            tzid = getattr(prop, "params", {}).get("TZID")
            values = getattr(prop, "dts", None) or ([prop] if hasattr(prop, "dt") else [])
            if not tzid or not any(_floating(v.dt) for v in values):
                continue
            zone, guessed = resolve(str(tzid))
            how = "offset" if guessed else ""
            if zone is None:
                zone, how = fallback(name), "fallback"
            for value in values:
                value.dt = _placed(value.dt, zone)
            if how:
                outcomes.append((name, how))
    return outcomes


def _floating(value: Any) -> bool:
    if isinstance(value, tuple):
        return any(_floating(v) for v in value)
    return isinstance(value, datetime) and value.tzinfo is None


def _placed(value: Any, zone: tzinfo) -> Any:
    if isinstance(value, tuple):
        return tuple(_placed(v, zone) for v in value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value
