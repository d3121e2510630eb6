"""One line per event that says what happened: the fields that matter for its kind.

A 4624 row should show who logged on, how and from where, not the first six fields of its
EventData. `SUMMARY_FIELDS` maps an event's source (its channel, or its provider where logs
have no channel) and event id to the fields worth reading, in order; other events fall back
to the first present of `FALLBACK_FIELDS`, then to their first fields. The same table renders
in Python (`summarise`: search results, the event page, the CLI) and in ClickHouse SQL
(`summary_sql`: the `summary` column of exports), and a test holds the two equal on every
sample event.

A line is `Field: value ¦ Field: value`; empty values and "-" are left out, each value is cut
to `VALUE_CHARS` characters, and newlines become spaces.
"""

from __future__ import annotations

from collections.abc import Mapping

SEP = " ¦ "
_TAB = "\t"  # joins a kind's field names in summary_sql (no name holds one)
#: Characters of one value in a summary (a script block or command line is cut here).
VALUE_CHARS = 160
#: Fields of an event of unknown kind, when it has none of `FALLBACK_FIELDS`.
FALLBACK_COUNT = 4
_EMPTY = ("", "-")

SECURITY = "Security"
SYSMON = "Microsoft-Windows-Sysmon/Operational"
SYSTEM = "System"
POWERSHELL = "Microsoft-Windows-PowerShell/Operational"
DEFENDER = "Microsoft-Windows-Windows Defender/Operational"
BITS = "Microsoft-Windows-Bits-Client/Operational"
RDPCORE = "Microsoft-Windows-RemoteDesktopServices-RdpCoreTS/Operational"
RCM = "Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational"
LSM = "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"
TASKS = "Microsoft-Windows-TaskScheduler/Operational"
WMI = "Microsoft-Windows-WMI-Activity/Operational"

_LOGON = ("TargetUserName", "TargetDomainName", "LogonType", "IpAddress", "WorkstationName")
_ACCOUNT = ("TargetUserName", "TargetDomainName", "SubjectUserName")
_GROUP = ("MemberName", "TargetUserName", "SubjectUserName")
_TASK = ("TaskName", "SubjectUserName")
_OBJECT = ("ObjectName", "ObjectType", "ProcessName", "SubjectUserName")
_SHARE = ("ShareName", "RelativeTargetName", "IpAddress", "SubjectUserName")
_BITS_JOB = ("jobTitle", "jobOwner", "url", "name")
_REGISTRY = ("EventType", "TargetObject", "Details", "Image")
_PIPE = ("PipeName", "Image", "EventType")
_DEFENDER = ("Threat Name", "Severity Name", "Path", "Process Name", "Detection User")

SUMMARY_FIELDS: dict[tuple[str, int], tuple[str, ...]] = {
    # Security: logons and sessions
    (SECURITY, 4624): _LOGON,
    (SECURITY, 4625): (*_LOGON, "Status", "SubStatus"),
    (SECURITY, 4634): ("TargetUserName", "TargetDomainName", "LogonType", "TargetLogonId"),
    (SECURITY, 4647): ("TargetUserName", "TargetDomainName", "TargetLogonId"),
    (SECURITY, 4648): ("SubjectUserName", "TargetUserName", "TargetServerName", "ProcessName"),
    (SECURITY, 4672): ("SubjectUserName", "SubjectDomainName", "PrivilegeList"),
    (SECURITY, 4627): ("TargetUserName", "LogonType", "GroupMembership"),
    (SECURITY, 4776): ("TargetUserName", "Workstation", "Status"),
    (SECURITY, 4768): ("TargetUserName", "ServiceName", "IpAddress", "Status"),
    (SECURITY, 4769): ("TargetUserName", "ServiceName", "IpAddress", "TicketEncryptionType"),
    (SECURITY, 4771): ("TargetUserName", "ServiceName", "IpAddress", "Status"),
    (SECURITY, 4778): ("AccountName", "ClientName", "ClientAddress"),
    (SECURITY, 4779): ("AccountName", "ClientName", "ClientAddress"),
    # Security: processes, privileges, objects
    (SECURITY, 4688): ("NewProcessName", "CommandLine", "ParentProcessName", "SubjectUserName"),
    (SECURITY, 4689): ("ProcessName", "SubjectUserName", "Status"),
    (SECURITY, 4673): ("ProcessName", "Service", "PrivilegeList", "SubjectUserName"),
    (SECURITY, 4703): ("TargetUserName", "EnabledPrivilegeList", "ProcessName"),
    (SECURITY, 4656): _OBJECT,
    (SECURITY, 4661): _OBJECT,
    (SECURITY, 4662): ("ObjectName", "OperationType", "Properties", "SubjectUserName"),
    (SECURITY, 4663): (*_OBJECT, "AccessList"),
    (SECURITY, 5136): ("ObjectDN", "AttributeLDAPDisplayName", "AttributeValue", "SubjectUserName"),
    (SECURITY, 5140): _SHARE,
    (SECURITY, 5145): _SHARE,
    (SECURITY, 5156): ("Application", "SourceAddress", "DestAddress", "DestPort", "Direction"),
    (SECURITY, 5158): ("Application", "SourceAddress", "SourcePort", "Protocol"),
    # Security: accounts, groups, policy, log
    (SECURITY, 4720): _ACCOUNT,
    (SECURITY, 4722): _ACCOUNT,
    (SECURITY, 4723): _ACCOUNT,
    (SECURITY, 4724): _ACCOUNT,
    (SECURITY, 4725): _ACCOUNT,
    (SECURITY, 4726): _ACCOUNT,
    (SECURITY, 4738): (*_ACCOUNT, "UserAccountControl"),
    (SECURITY, 4740): ("TargetUserName", "TargetDomainName", "SubjectUserName"),
    (SECURITY, 4741): ("TargetUserName", "DnsHostName", "SubjectUserName"),
    (SECURITY, 4742): ("TargetUserName", "DnsHostName", "ServicePrincipalNames", "SubjectUserName"),
    (SECURITY, 4781): ("OldTargetUserName", "NewTargetUserName", "SubjectUserName"),
    (SECURITY, 4728): _GROUP,
    (SECURITY, 4732): _GROUP,
    (SECURITY, 4756): _GROUP,
    (SECURITY, 4798): ("TargetUserName", "CallerProcessName", "SubjectUserName"),
    (SECURITY, 4799): ("TargetUserName", "CallerProcessName", "SubjectUserName"),
    (SECURITY, 4698): _TASK,
    (SECURITY, 4699): _TASK,
    (SECURITY, 4700): _TASK,
    (SECURITY, 4701): _TASK,
    (SECURITY, 4702): _TASK,
    (SECURITY, 4719): ("SubjectUserName", "CategoryId", "SubcategoryGuid", "AuditPolicyChanges"),
    (SECURITY, 4826): ("SubjectUserName", "KernelDebug", "LoadOptions"),
    (SECURITY, 4985): ("ProcessName", "NewState", "SubjectUserName"),
    (SECURITY, 1102): ("SubjectUserName", "SubjectDomainName"),
    (SECURITY, 4697): ("ServiceName", "ServiceFileName", "ServiceAccount", "SubjectUserName"),
    # Sysmon
    (SYSMON, 1): ("Image", "CommandLine", "ParentImage", "User"),
    (SYSMON, 2): ("Image", "TargetFilename", "CreationUtcTime", "PreviousCreationUtcTime"),
    (SYSMON, 3): ("Image", "SourceIp", "DestinationIp", "DestinationPort", "DestinationHostname"),
    (SYSMON, 5): ("Image", "ProcessId"),
    (SYSMON, 6): ("ImageLoaded", "Signature", "SignatureStatus"),
    (SYSMON, 7): ("Image", "ImageLoaded", "Signed", "Signature"),
    (SYSMON, 8): ("SourceImage", "TargetImage", "StartFunction", "StartModule"),
    (SYSMON, 10): ("SourceImage", "TargetImage", "GrantedAccess"),
    (SYSMON, 11): ("Image", "TargetFilename"),
    (SYSMON, 12): _REGISTRY,
    (SYSMON, 13): _REGISTRY,
    (SYSMON, 14): ("EventType", "TargetObject", "NewName", "Image"),
    (SYSMON, 15): ("Image", "TargetFilename", "Hash"),
    (SYSMON, 17): _PIPE,
    (SYSMON, 18): _PIPE,
    (SYSMON, 19): ("Name", "Query", "EventNamespace", "User"),
    (SYSMON, 20): ("Name", "Destination", "Type", "User"),
    (SYSMON, 21): ("Consumer", "Filter", "User"),
    (SYSMON, 22): ("Image", "QueryName", "QueryResults"),
    (SYSMON, 23): ("Image", "TargetFilename", "User"),
    (SYSMON, 25): ("Image", "Type"),
    (SYSMON, 26): ("Image", "TargetFilename", "User"),
    # System, PowerShell, Defender, Task Scheduler, WMI
    (SYSTEM, 7045): ("ServiceName", "ImagePath", "ServiceType", "StartType", "AccountName"),
    (SYSTEM, 7036): ("param1", "param2"),
    (SYSTEM, 7040): ("param1", "param2", "param3"),
    (SYSTEM, 104): ("SubjectUserName", "Channel"),
    (SYSTEM, 10016): ("param4", "param5", "param8", "param9"),
    (POWERSHELL, 4103): ("Payload", "ContextInfo"),
    (POWERSHELL, 4104): ("ScriptBlockText", "Path"),
    ("Windows PowerShell", 400): ("HostApplication", "EngineVersion"),
    ("Windows PowerShell", 600): ("ProviderName", "HostApplication"),
    ("Windows PowerShell", 800): ("HostApplication", "CommandLine"),
    (DEFENDER, 1116): _DEFENDER,
    (DEFENDER, 1117): (*_DEFENDER[:3], "Action Name"),
    (DEFENDER, 5001): ("Product Name",),
    (DEFENDER, 5007): ("New Value", "Old Value"),
    (TASKS, 106): ("TaskName", "UserContext"),
    (TASKS, 141): ("TaskName", "UserName"),
    (TASKS, 200): ("TaskName", "ActionName"),
    (TASKS, 201): ("TaskName", "ActionName", "ResultCode"),
    (WMI, 5857): ("ProviderName", "ProviderPath"),
    ("Microsoft-Windows-Application-Experience/Program-Telemetry", 500): ("ExePath", "FixName"),
    (WMI, 5861): ("Namespace", "ESS", "Consumer", "PossibleCause"),
    # BITS, RDP, MSI, RPC
    (BITS, 3): ("jobTitle", "jobOwner", "processPath"),
    (BITS, 4): _BITS_JOB,
    (BITS, 5): _BITS_JOB,
    (BITS, 59): ("name", "url", "bytesTransferred"),
    (BITS, 60): ("name", "url", "hr", "bytesTransferred"),
    (BITS, 61): ("name", "url", "hr"),
    (BITS, 209): ("jobName", "isRoaming"),
    (BITS, 310): ("ErrorCode",),
    (RDPCORE, 131): ("ClientIP", "ConnType"),
    (RDPCORE, 98): ("ClientIP",),
    (RDPCORE, 65): ("ConnectionName",),
    (RDPCORE, 66): ("ConnectionName", "SessionID"),
    (RDPCORE, 68): ("ConnectionName", "PromptForCredentials"),
    (RDPCORE, 71): ("ConnectionName", "DisplayDriverName"),
    (RDPCORE, 101): ("ReasonString",),
    (RDPCORE, 103): ("ReasonCode",),
    (RDPCORE, 129): ("TransportProtocolName", "Port"),
    (RDPCORE, 141): ("InstanceID",),
    (RDPCORE, 142): ("error",),
    (RDPCORE, 72): ("MethodName",),
    (RDPCORE, 104): ("TimezoneBiasHour",),
    (RDPCORE, 132): ("ChannelName", "TunnelID"),
    (RDPCORE, 135): ("TransportType", "TunnelID"),
    (RDPCORE, 143): ("error",),
    (RDPCORE, 145): ("IdleSeconds",),
    (RDPCORE, 148): ("ChannelName", "TunnelID"),
    (RDPCORE, 168): ("ServerName", "MonitorWidth", "MonitorHeight"),
    (RDPCORE, 169): ("ServerName", "MajorType", "MinorType"),
    (RDPCORE, 226): ("EventName", "PreviousStateName", "NewStateName"),
    (RDPCORE, 227): ("Name", "Value", "CustomLevel"),
    (RDPCORE, 228): ("ComponentName", "Message", "ErrorCode"),
    (RDPCORE, 229): ("Name", "CustomLevel"),
    (RCM, 258): ("listenerName",),
    (RCM, 261): ("listenerName",),
    (RCM, 1149): ("Param1", "Param2", "Param3"),
    (LSM, 21): ("User", "SessionID", "Address"),
    (LSM, 22): ("User", "SessionID", "Address"),
    (LSM, 24): ("User", "SessionID", "Address"),
    (LSM, 25): ("User", "SessionID", "Address"),
    ("Microsoft-Windows-RPC", 6): ("InterfaceUuid", "NetworkAddress", "Endpoint", "ProcNum"),
    ("MsiInstaller", 1040): ("Data",),
    ("MsiInstaller", 1042): ("Data",),
    ("MsiInstaller", 11707): ("Data",),
    ("MSSQLSERVER", 18456): ("Data",),
    ("MSSQLSERVER", 15457): ("Data",),
    ("MSSQLSERVER", 33205): ("Data",),
}

#: For events of other kinds (and NDJSON/CSV records): the first present of these...
FALLBACK_FIELDS = (
    "CommandLine",
    "Image",
    "TargetUserName",
    "SubjectUserName",
    "IpAddress",
    "ServiceName",
    "TargetFilename",
    "TargetObject",
    "ObjectName",
    "ProcessName",
    "process.command_line",
    "process.executable",
    "user.name",
    "source.ip",
    "destination.ip",
    "message",
    "Message",
)


def fields_for(channel: str, provider: str, event_id: int | None) -> tuple[str, ...] | None:
    """The summary fields of an event of this kind (by channel, then provider), or None."""
    if event_id is None:
        return None
    return SUMMARY_FIELDS.get((channel, event_id)) or SUMMARY_FIELDS.get((provider, event_id))


def clip(text: str) -> str:
    """A value as a summary shows it: on one line, at most VALUE_CHARS characters."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")[:VALUE_CHARS]


def _join(pairs: list[tuple[str, str]]) -> str:
    return SEP.join(f"{name}: {clip(value)}" for name, value in pairs)


def summary_pairs(
    channel: str, provider: str, event_id: int | None, fields: Mapping[str, str]
) -> list[tuple[str, str]]:
    """The fields a summary shows, with their whole values (pages make each a filter)."""
    names = fields_for(channel, provider, event_id)
    if names is not None:
        return [(n, fields[n]) for n in names if fields.get(n, "") not in _EMPTY]
    chosen = [(n, fields[n]) for n in FALLBACK_FIELDS if fields.get(n, "") not in _EMPTY]
    if not chosen:
        present = [(k, v) for k, v in fields.items() if v not in _EMPTY]
        chosen = present[:FALLBACK_COUNT]
    return chosen[:FALLBACK_COUNT]


def summarise(channel: str, provider: str, event_id: int | None, fields: Mapping[str, str]) -> str:
    """The one-line summary of an event (see the module's docstring)."""
    return _join(summary_pairs(channel, provider, event_id, fields))


# ------------------------------------------------------------------------- ClickHouse SQL


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _value_sql(value: str) -> str:
    """`clip` in SQL (plain replaces: a regular expression over every value cost more)."""
    one_line = f"replaceAll(replaceAll(replaceAll({value}, '\\r\\n', ' '), '\\n', ' '), '\\r', ' ')"
    return f"substringUTF8({one_line}, 1, {VALUE_CHARS})"


def _names_sql(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(_quote(n) for n in names) + "]"


def _pairs_sql(names: str, keys: str, values: str, most: int | None = None) -> str:
    """`_join` of the present fields among the names of the SQL array `names` (the first
    `most`), in the order of `names`, where `keys` and `values` are the event's fields."""
    wanted = f"has({names}, k) AND v NOT IN ('', '-')"
    chosen_keys = f"arrayFilter((k, v) -> {wanted}, {keys}, {values})"
    chosen_values = f"arrayFilter((v, k) -> {wanted}, {values}, {keys})"
    by_name = f"indexOf({names}, k)"
    ordered_keys = f"arraySort(k -> {by_name}, {chosen_keys})"
    ordered_values = f"arraySort((v, k) -> {by_name}, {chosen_values}, {chosen_keys})"
    if most is not None:
        ordered_keys = f"arraySlice({ordered_keys}, 1, {most})"
        ordered_values = f"arraySlice({ordered_values}, 1, {most})"
    pairs = (
        f"arrayMap((k, v) -> concat(k, ': ', {_value_sql('v')}), {ordered_keys}, {ordered_values})"
    )
    return f"arrayStringConcat({pairs}, {_quote(SEP)})"


def _fallback_sql(keys: str, values: str) -> str:
    named = _pairs_sql(_names_sql(FALLBACK_FIELDS), keys, values, FALLBACK_COUNT)
    # no named field present: the first present fields in the map's order
    present_keys = f"arrayFilter((k, v) -> v NOT IN ('', '-'), {keys}, {values})"
    present_values = f"arrayFilter((v, k) -> v NOT IN ('', '-'), {values}, {keys})"
    most = FALLBACK_COUNT
    pairs = (
        f"arrayMap((k, v) -> concat(k, ': ', {_value_sql('v')}), "
        f"arraySlice({present_keys}, 1, {most}), arraySlice({present_values}, 1, {most}))"
    )
    first = f"arrayStringConcat({pairs}, {_quote(SEP)})"
    return f"if({named} != '', {named}, {first})"


def summary_sql() -> str:
    """`summarise` as one ClickHouse expression over an events row.

    The table goes in as two constant arrays, `source|event id` keys and their field names
    joined by tabs, looked up with `transform` (a hash lookup of constants) by the channel,
    then by the provider; one expression renders whichever names it gives. The names and
    the event's keys and values are bound as the arguments of one lambda (an array of one
    each): a lambda that reads a column instead gets a copy of it per array element, the
    whole map per name. A branch per table entry (multiIf) made a 100 KB expression that
    took ~0.5 s to analyse in every query, five times the cost of a 20,000-event export."""
    keys = ", ".join(_quote(f"{source}|{event_id}") for source, event_id in SUMMARY_FIELDS)
    joined = ", ".join(_quote(_TAB.join(names)) for names in SUMMARY_FIELDS.values())
    event_id = "ifNull(toString(event_id), '')"
    by_channel, by_provider = (f"concat({c}, '|', {event_id})" for c in ("channel", "provider"))
    on_provider = f"transform({by_provider}, [{keys}], [{joined}], '')"
    found = f"transform({by_channel}, [{keys}], [{joined}], {on_provider})"
    names = "splitByChar('\\t', f)"
    line = f"if(f != '', {_pairs_sql(names, 'ks', 'vs')}, {_fallback_sql('ks', 'vs')})"
    return f"arrayMap((f, ks, vs) -> {line}, [{found}], [mapKeys(fields)], [mapValues(fields)])[1]"
