"""Which addresses a process and its descendants listen on: for the loopback tests (imports no ray)."""

import ipaddress

import psutil


def is_loopback(address):
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def listening_addresses(process):
    addresses = set()
    for child in [process, *process.children(recursive=True)]:
        try:
            for connection in child.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    addresses.add(connection.laddr.ip)
        except psutil.NoSuchProcess:
            pass
    return addresses
