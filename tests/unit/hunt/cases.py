"""Matching cases per IOC type: (IOC, type, event value, expected), shared by the batch
tests and the batch/index differential test. `why` names the rule each case checks."""

from __future__ import annotations

from typing import NamedTuple

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
RUN_KEY = "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run"


class MatchCase(NamedTuple):
    ioc: str
    ioc_type: str | None
    text: str
    expected: bool
    why: str


CASES = [
    # IPv4: a whole token; dots may end a sentence but not continue a number
    MatchCase("10.1.1.1", None, "10.1.1.1", True, "ipv4 exact"),
    MatchCase("10.1.1.1", None, "10.1.1.10", False, "ipv4 longer last octet"),
    MatchCase("10.1.1.1", None, "210.1.1.1", False, "ipv4 longer first octet"),
    MatchCase("10.1.1.1", None, "110.1.1.1", False, "ipv4 longer first octet 2"),
    MatchCase("10.1.1.1", None, "src=10.1.1.1:443", True, "ipv4 with port"),
    MatchCase("10.1.1.1", None, "10.1.1.1.5", False, "ipv4 inside longer dotted number"),
    MatchCase("10.1.1.1", None, "connect to 10.1.1.1.", True, "ipv4 at sentence end"),
    MatchCase("10.1.1.1", None, "::ffff:10.1.1.1", True, "ipv4-mapped ipv6"),
    MatchCase("10[.]1.1.1", None, "x 10.1.1.1 y", True, "ipv4 refanged"),
    # IPv6: any textual form of the same address
    MatchCase("2001:db8::1", None, "2001:db8::1", True, "ipv6 exact"),
    MatchCase("2001:DB8:0:0:0:0:0:1", None, "2001:db8::1", True, "ipv6 ioc uncompressed"),
    MatchCase("2001:db8::1", None, "2001:0DB8:0000:0000:0000:0000:0000:0001", True, "ipv6 full"),
    MatchCase("2001:db8::1", None, "2001:db8:0:0::1", True, "ipv6 partly compressed"),
    MatchCase("2001:db8::1", None, "[2001:db8::1]:443", True, "ipv6 bracketed with port"),
    MatchCase("2001:db8::1", None, "2001:db8::10", False, "ipv6 longer last group"),
    MatchCase("2001:db8::1", None, "2001:db8::1:5", False, "ipv6 more groups"),
    MatchCase("2001:db8::1", None, "12001:db8::1", False, "ipv6 longer first group"),
    MatchCase("::1", None, "fe80::1", False, "ipv6 loopback vs link-local"),
    MatchCase("::1", None, "::1", True, "ipv6 loopback"),
    # CIDR: dotted quads inside the range
    MatchCase("192.168.0.0/16", None, "192.168.44.3", True, "cidr inside"),
    MatchCase("192.168.0.0/16", None, "192.169.0.1", False, "cidr outside"),
    MatchCase("10.0.0.0/8", None, "from 10.255.255.255:80 to 8.8.8.8", True, "cidr upper end"),
    MatchCase("10.0.0.0/8", None, "110.1.1.1", False, "cidr first octet prefix"),
    MatchCase("10.0.0.0/8", None, "10.1.1.1.5", False, "cidr not a dotted quad"),
    MatchCase("10.0.0.0/8", None, "010.1.1.1", False, "cidr leading zero is not an address"),
    MatchCase("10.0.0.0/8", None, "10.0.0.256", False, "cidr octet over 255"),
    MatchCase("172.16.0.0/12", None, "172.31.255.1", True, "cidr /12 inside"),
    MatchCase("172.16.0.0/12", None, "172.32.0.1", False, "cidr /12 outside"),
    MatchCase("0.0.0.0/0", "cidr", "v1.2.3.4.", True, "cidr everything"),
    # Domains: the name and its subdomains, nothing that only contains it
    MatchCase("evil-site.com", None, "evil-site.com", True, "domain exact"),
    MatchCase("evil-site.com", None, "notevil-site.com", False, "domain dash over-match"),
    MatchCase("evil-site.com", None, "my-evil-site.com", False, "domain dash prefix"),
    MatchCase("evil-site.com", None, "evil-site.com.au", False, "domain longer tld"),
    MatchCase("evil-site.com", None, "evil-site.company", False, "domain tld prefix"),
    MatchCase("evil-site.com", None, "sub.evil-site.com", True, "domain subdomain"),
    MatchCase("evil-site.com", None, "https://a.b.EVIL-SITE.COM/x", True, "domain in url"),
    MatchCase("evil-site.com", None, "user@evil-site.com", True, "domain in email"),
    MatchCase("evil-site.com", None, "query evil-site.com.", True, "domain fqdn dot"),
    MatchCase("evil-site[.]com", None, "evil-site.com", True, "domain refanged"),
    MatchCase("sub.evil-site.com", None, "evil-site.com", False, "domain parent"),
    # Hashes: never inside a longer hex string
    MatchCase(MD5, None, f"MD5={MD5.upper()},SHA256={SHA256}", True, "md5 in Hashes"),
    MatchCase(MD5, None, "a" + MD5, False, "md5 hex before"),
    MatchCase(MD5, None, MD5 + "0", False, "md5 hex after"),
    MatchCase(MD5, None, f"sample_{MD5}.exe", True, "md5 in file name"),
    MatchCase(SHA1, None, f"SHA1={SHA1.upper()}", True, "sha1"),
    MatchCase(SHA256, None, SHA256.upper(), True, "sha256 upper case"),
    MatchCase(SHA256[:40], "sha1", SHA256, False, "sha1 prefix of sha256"),
    # File names: a whole path component
    MatchCase("mal-ware.exe", None, "C:\\Temp\\mal-ware.exe", True, "filename after backslash"),
    MatchCase("mal-ware.exe", None, "C:\\Temp\\notmal-ware.exe", False, "filename dash prefix"),
    MatchCase("mal-ware.exe", None, "notmal-ware.exe", False, "filename longer name"),
    MatchCase("mal-ware.exe", None, "MAL-WARE.EXE", True, "filename whole value"),
    MatchCase("mal-ware.exe", None, "/tmp/mal-ware.exe", True, "filename after slash"),
    MatchCase("mal-ware.exe", None, '"C:\\x\\mal-ware.exe" -k', True, "filename in command"),
    MatchCase("mal-ware.exe", None, "mal-ware.exe.txt", False, "filename longer extension"),
    MatchCase("mal-ware.exe", None, "C:\\x\\mal-ware.exe:Zone.Identifier", True, "filename ads"),
    # File paths and registry keys: case-insensitive substrings
    MatchCase("C:\\Windows\\Temp\\evil.exe", None, "c:\\windows\\temp\\EVIL.exe", True, "path"),
    MatchCase("C:\\Windows\\Temp\\", "filepath", "C:\\Windows\\Temp\\x\\y.dll", True, "dir"),
    MatchCase("C:\\Windows\\Temp\\evil.exe", None, "C:\\Windows\\Temp\\evil2.exe", False, "path2"),
    MatchCase(RUN_KEY, None, RUN_KEY.upper() + "\\evil", True, "registry subkey"),
    MatchCase(RUN_KEY, None, RUN_KEY.replace("HKLM", "\\REGISTRY\\MACHINE"), True, "kernel"),
    MatchCase(RUN_KEY, None, RUN_KEY.replace("HKLM", "HKEY_LOCAL_MACHINE"), True, "long hive"),
    MatchCase(RUN_KEY, None, RUN_KEY.replace("HKLM", "HKCU"), False, "registry other hive"),
    MatchCase(
        "HKCU\\Software\\Evil", None, "HKU\\S-1-5-21-1-2-3-1001\\Software\\Evil", True, "hku"
    ),
    # URLs: case-insensitive substrings after refanging
    MatchCase("hxxp://evil[.]com/Path", None, "GET HTTP://EVIL.COM/path?q=1", True, "url case"),
    MatchCase("http://evil.com/path", None, "https://evil.com/path", False, "url scheme"),
    # User names, SIDs, e-mail addresses: whole tokens
    MatchCase("jdoe", "username", "CORP\\jdoe", True, "user after domain"),
    MatchCase("jdoe", "username", "JDoe@corp.local", True, "user upn"),
    MatchCase("jdoe", "username", "jdoe2", False, "user longer"),
    MatchCase("jdoe", "username", "xjdoe", False, "user prefix"),
    MatchCase("jdoe", "username", "j.jdoe", False, "user dotted"),
    MatchCase("jdoe", "username", "logon by jdoe.", True, "user sentence end"),
    MatchCase("ws01", "username", "WS01$", False, "user vs machine account"),
    MatchCase("S-1-5-21-1-2-3-500", None, "S-1-5-21-1-2-3-500", True, "sid"),
    MatchCase("S-1-5-21-1-2-3-500", None, "S-1-5-21-1-2-3-5001", False, "sid longer rid"),
    MatchCase("S-1-5-21-1-2-3-500", None, "S-1-5-21-1-2-3-500-7", False, "sid more parts"),
    MatchCase("S-1-5-21-1-2-3-500", None, "%{s-1-5-21-1-2-3-500}", True, "sid in braces"),
    MatchCase("bob@evil.com", None, "From: Bob@Evil.com", True, "email"),
    MatchCase("bob@evil.com", None, "jimbob@evil.com", False, "email longer local part"),
    MatchCase("bob@evil.com", None, "bob@evil.com.au", False, "email longer domain"),
    MatchCase("bob[at]evil[.]com", None, "<bob@evil.com>", True, "email refanged"),
    # Command fragments: substrings, any run of white space for a space
    MatchCase("powershell -enc", "command", "powershell  -ENC jab", True, "command spaces"),
    MatchCase("powershell -enc", "command", "powershell\t-encodedcommand", True, "command tab"),
    MatchCase("powershell -enc", "command", "powershell-enc", False, "command needs space"),
    # Free strings: substrings
    MatchCase("mimikatz", None, "Invoke-Mimikatz", True, "string substring"),
    MatchCase("mimikatz", None, "mimi katz", False, "string split"),
    MatchCase("it's \\ 'quoted'", "string", "IT'S \\ 'QUOTED'", True, "string quotes"),
    # Regexes: as written, case-insensitive unless (?-i), anchors per value
    MatchCase(r"invoke-\w+", "regex", "IEX Invoke-Mimikatz", True, "regex default flags"),
    MatchCase(r"(?-i)Invoke-\w+", "regex", "invoke-mimikatz", False, "regex case-sensitive"),
    MatchCase(r"(?-i)Invoke-\w+", "regex", "Invoke-Mimikatz", True, "regex case-sensitive hit"),
    MatchCase(r"^cmd\.exe$", "regex", "CMD.exe", True, "regex anchors"),
    MatchCase(r"^cmd\.exe$", "regex", "c:\\cmd.exe", False, "regex anchors per value"),
    MatchCase(r"a.b", "regex", "a\nb", False, "regex dot and newline"),
    MatchCase(r"(?s)a.b", "regex", "a\nb", True, "regex dotall"),
    MatchCase(r"(?m)^b$", "regex", "a\nb", True, "regex multiline"),
]
